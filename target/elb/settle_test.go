package elb_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// fakeClock is a clock whose Sleep advances it at once, so retries that
// last a minute at AWS take no time in a test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return ctx.Err()
}

// A real Classic ELB answers a create on a port whose delete has not
// settled with DuplicateListener (a 400 the SDK does not retry): the
// switch retries it and completes, instead of undoing.
func TestDuplicateListenerRightAfterDeleteIsRetried(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{Listeners: elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy)}, elb.Options{Now: clk.Now, Sleep: clk.Sleep})
	e.proxy.Add(faultproxy.Rule{Action: "CreateLoadBalancerListeners", Times: 2, Status: 400, Body: faultproxy.QueryError("DuplicateListener", "injected: the delete has not settled")})
	e.proxy.Add(faultproxy.Rule{Action: "SetLoadBalancerPoliciesOfListener", Times: 1, Status: 400, Body: faultproxy.QueryError("ListenerNotFound", "injected: the create has not settled")})
	if _, err := switchTo(e, target.SwitchOptions{}); err != nil {
		t.Fatalf("switch failed: %v\n%s", err, e.log)
	}
	if got := e.requireOneColor(elbtest.SSLPolicy); got != release.Green {
		t.Errorf("%s live, want green", got)
	}
	if n := e.proxy.Count("CreateLoadBalancerListeners"); n != 3 {
		t.Errorf("%d creates, want 3 (two answered DuplicateListener)", n)
	}
	if !strings.Contains(e.log.String(), "DuplicateListener (an earlier change has not settled yet): retrying") {
		t.Errorf("the retry is not said:\n%s", e.log)
	}
}

// DuplicateListener for longer than the settle timeout: the listeners
// were deleted, so recovery never re-creates them on the old port (which
// would meet the same error); it says to repair, and repair finishes the
// switch toward the new color.
func TestDuplicateListenerPersistsRecoveryGoesForward(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{}, elb.Options{Now: clk.Now, Sleep: clk.Sleep})
	e.proxy.Add(faultproxy.Rule{Action: "CreateLoadBalancerListeners", Status: 400, Body: faultproxy.QueryError("DuplicateListener", "injected")})
	_, err := switchTo(e, target.SwitchOptions{})
	if !errors.Is(err, target.ErrInconsistent) || !strings.Contains(hintOf(err), "oops repair") {
		t.Fatalf("Switch = %v (hint %q), want ErrInconsistent with a repair hint", err, hintOf(err))
	}
	if strings.Contains(e.log.String(), "undoing the switch") {
		t.Errorf("recovery undid toward the old port after the delete:\n%s", e.log)
	}
	if !strings.Contains(err.Error(), "still DuplicateListener after retrying for 1m0s") {
		t.Errorf("error does not say how long it retried: %v", err)
	}
	e.proxy.Clear()
	if _, err := e.tgt.Repair(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("repair left %s live, want green", got)
	}
}

// recorder keeps the body of the last answer it passed on.
type recorder struct {
	mu   sync.Mutex
	last []byte
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.last = b
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, err
}

// A read right after a change may not show it yet. The delete is applied
// but its answer lost, and the next DescribeLoadBalancers still shows the
// listeners (a stale read, replayed from before the switch): oops must not
// conclude "nothing changed, blue is still live" with the listeners gone.
// It reads again after a short wait, sees them missing, and finishes.
func TestStaleReadAfterTheDeleteIsReadAgain(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{}, elb.Options{Now: clk.Now, Sleep: clk.Sleep})
	rec := &recorder{}
	cfg := awstest.Config(moto.URL)
	cfg.HTTPClient = rec
	if _, err := elbsdk.NewFromConfig(cfg).DescribeLoadBalancers(e.ctx, &elbsdk.DescribeLoadBalancersInput{LoadBalancerNames: []string{e.name}}); err != nil {
		t.Fatal(err)
	}
	e.proxy.Add(faultproxy.Rule{Action: "DeleteLoadBalancerListeners", Times: 1, Cut: true, After: true})
	// The switch's own read passes; the recovery's first read is stale.
	e.proxy.Add(faultproxy.Rule{Action: "DescribeLoadBalancers", Skip: 1, Times: 1, Status: 200, Body: string(rec.last)})
	if _, err := switchTo(e, target.SwitchOptions{}); err != nil {
		t.Fatalf("switch = %v\n%s", err, e.log)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("%s live, want green", got)
	}
	if n := e.proxy.Count("DescribeLoadBalancers"); n < 3 {
		t.Errorf("%d reads, want the stale one read again", n)
	}
}
