package elb_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// One moto for the package (it takes over a second to start); every test
// uses its own ELB name and its own fault proxy.
var (
	moto    *elbtest.Moto
	motoErr error
)

func TestMain(m *testing.M) {
	moto, motoErr = elbtest.StartServer()
	code := m.Run()
	if moto != nil {
		moto.Stop()
	}
	os.Exit(code)
}

// env is one test's ELB behind its own fault proxy.
type env struct {
	t     *testing.T
	ctx   context.Context
	name  string
	proxy *faultproxy.Proxy
	cfg   aws.Config // through the proxy
	ids   []string
	log   *syncBuffer
	tgt   *elb.Target
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.b, format+"\n", args...)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// elbName is unique per test run (go test -count=N reuses test names on
// the same moto) and valid for an ELB (32 characters max).
func elbName(t *testing.T) string {
	h := sha1.Sum(fmt.Appendf(nil, "%s/%d", t.Name(), time.Now().UnixNano()))
	return "t-" + hex.EncodeToString(h[:])[:20]
}

// setup creates f and a Target on it. An empty Name is made unique; empty
// ports become 8080 (blue) and 8081 (green); "-" leaves that tag out.
func setup(t *testing.T, f elbtest.Fixture, opts elb.Options) *env {
	t.Helper()
	if moto == nil {
		awstest.Unavailable(t, motoErr)
	}
	if f.Name == "" {
		f.Name = elbName(t)
	}
	for p, def := range map[*string]string{&f.Blue: "8080", &f.Green: "8081"} {
		switch *p {
		case "":
			*p = def
		case "-":
			*p = ""
		}
	}
	ctx := awstest.Ctx(t)
	ids, err := elbtest.Create(ctx, awstest.Config(moto.URL), f)
	if err != nil {
		t.Fatal(err)
	}
	p := faultproxy.NewT(t, moto.URL)
	e := &env{t: t, ctx: ctx, name: f.Name, proxy: p, cfg: awstest.Config(p.URL), ids: ids, log: &syncBuffer{}}
	if opts.Logf == nil {
		opts.Logf = e.log.logf
	}
	opts.Region = awstest.Region
	e.tgt = elb.New(elbsdk.NewFromConfig(e.cfg), f.Name, opts)
	return e
}

// snap reads the ELB directly from moto (not counted by the proxy).
func (e *env) snap() *elbtest.Snapshot {
	e.t.Helper()
	s, err := elbtest.Read(e.ctx, awstest.Config(moto.URL), e.name)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// onPort is what the default fixture's listeners look like when port
// carries the traffic. (moto reports a listener's instance protocol as its
// protocol, hence HTTPS:443->HTTPS.)
func onPort(port string, policies ...string) []string {
	l443 := "HTTPS:443->HTTPS:" + port + " cert=" + elbtest.FakeCert
	if len(policies) > 0 {
		l443 += " policies=" + strings.Join(policies, ",")
	}
	return []string{"HTTP:80->HTTP:" + port, l443}
}

// requireOneColor fails unless every listener of the default fixture is
// back, all on one color, with the health check on that color too, and
// the target reads as consistent. It returns the live color.
func (e *env) requireOneColor(policies ...string) release.Color {
	e.t.Helper()
	s := e.snap()
	for _, c := range []struct {
		color release.Color
		port  string
	}{{release.Blue, "8080"}, {release.Green, "8081"}} {
		if slices.Equal(s.Listeners, onPort(c.port, policies...)) {
			if want := "HTTP:" + c.port + "/healthcheck 30/5/2/2"; s.HealthCheck != want {
				e.t.Fatalf("listeners on %s but health check is %q, want %q", c.color, s.HealthCheck, want)
			}
			if _, ok := s.Tags["oops:switch"]; ok {
				e.t.Fatalf("tag oops:switch left behind: %v", s.Tags)
			}
			st, err := e.tgt.State(e.ctx)
			if err != nil {
				e.t.Fatalf("listeners look right but State says: %v", err)
			}
			if st.Live.Color != c.color {
				e.t.Fatalf("State says %s is live, listeners say %s", st.Live.Color, c.color)
			}
			return c.color
		}
	}
	e.t.Fatalf("listeners are not all back on one color: %s\nlog:\n%s", s, e.log)
	return ""
}

// mutating counts the proxy's calls that change the ELB.
func (e *env) mutating() []string {
	var out []string
	for _, c := range e.proxy.Calls() {
		if !strings.HasPrefix(c, "Describe") {
			out = append(out, c)
		}
	}
	return out
}

func switchTo(e *env, opts target.SwitchOptions) (*target.SwitchResult, error) {
	if opts.Logf == nil {
		opts.Logf = e.log.logf
	}
	return target.Switch(e.ctx, e.tgt, opts)
}
