package dns_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/dnstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/dns"
)

var moto awstest.Shared

func TestMain(m *testing.M) { os.Exit(moto.Main(m)) }

const (
	shaA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// counting records the Route 53 calls the target makes, and can stand in
// for a call moto does not model (GetChange's PENDING, a failing health
// check).
type counting struct {
	dns.API
	mu      sync.Mutex
	calls   []string
	batches []*types.ChangeBatch
	// pending answers this many GetChange calls with PENDING first.
	pending int
	// unhealthy health check ids answer with failures.
	unhealthy map[string]bool
}

func (c *counting) note(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, op)
}

func (c *counting) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.calls {
		if s == op {
			n++
		}
	}
	return n
}

func (c *counting) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls, c.batches = nil, nil
}

func (c *counting) ListHostedZonesByName(ctx context.Context, in *route53.ListHostedZonesByNameInput, o ...func(*route53.Options)) (*route53.ListHostedZonesByNameOutput, error) {
	c.note("ListHostedZonesByName")
	return c.API.ListHostedZonesByName(ctx, in, o...)
}

func (c *counting) ListResourceRecordSets(ctx context.Context, in *route53.ListResourceRecordSetsInput, o ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	c.note("ListResourceRecordSets")
	return c.API.ListResourceRecordSets(ctx, in, o...)
}

func (c *counting) ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, o ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error) {
	c.note("ChangeResourceRecordSets")
	c.mu.Lock()
	c.batches = append(c.batches, in.ChangeBatch)
	c.mu.Unlock()
	return c.API.ChangeResourceRecordSets(ctx, in, o...)
}

func (c *counting) GetChange(ctx context.Context, in *route53.GetChangeInput, o ...func(*route53.Options)) (*route53.GetChangeOutput, error) {
	c.note("GetChange")
	out, err := c.API.GetChange(ctx, in, o...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && c.pending > 0 {
		c.pending--
		out.ChangeInfo.Status = types.ChangeStatusPending
	}
	return out, err
}

func (c *counting) GetHealthCheckStatus(ctx context.Context, in *route53.GetHealthCheckStatusInput, o ...func(*route53.Options)) (*route53.GetHealthCheckStatusOutput, error) {
	c.note("GetHealthCheckStatus")
	out, err := c.API.GetHealthCheckStatus(ctx, in, o...)
	if err == nil && c.unhealthy[aws.ToString(in.HealthCheckId)] {
		// moto reports every health check healthy; AWS reports what its
		// checkers saw.
		for i := range out.HealthCheckObservations {
			out.HealthCheckObservations[i].StatusReport.Status = aws.String("Failure: HTTP Status Code 503, Service Unavailable")
		}
	}
	return out, err
}

// env is one test's hosted zone on the shared moto.
type env struct {
	t     *testing.T
	ctx   context.Context
	zone  *dnstest.Zone
	proxy *faultproxy.Proxy
	api   *counting
	// apps answer the health probes of each color's address.
	apps map[release.Color]*httptest.Server
	now  time.Time
}

func setup(t *testing.T, o dnstest.Options) *env {
	t.Helper()
	moto.Need(t)
	t.Parallel()
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", t.Name(), time.Now().UnixNano())
	o.Zone = fmt.Sprintf("z%08x.example.com", h.Sum32())
	e := &env{t: t, ctx: awstest.Ctx(t), now: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}
	var err error
	if e.zone, err = dnstest.New(e.ctx, awstest.Config(moto.URL), o); err != nil {
		t.Fatal(err)
	}
	e.proxy = faultproxy.NewT(t, moto.URL)
	e.api = &counting{API: route53.NewFromConfig(awstest.Config(e.proxy.URL)), unhealthy: map[string]bool{}}
	e.apps = map[release.Color]*httptest.Server{}
	for _, c := range []release.Color{release.Blue, release.Green} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
		t.Cleanup(srv.Close)
		e.apps[c] = srv
	}
	return e
}

// dial sends a probe of a color's fake address to that color's app on
// 127.0.0.1: the fake addresses are never dialed.
func (e *env) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	for c, a := range dnstest.Addr {
		if a == host {
			return (&net.Dialer{}).DialContext(ctx, network, e.apps[c].Listener.Addr().String())
		}
	}
	return nil, fmt.Errorf("test dialer: %s is no color's address", addr)
}

func (e *env) target(cfg dns.Config) *dns.Target {
	e.t.Helper()
	if cfg.DNSName == "" {
		cfg.DNSName = e.zone.Record
	}
	if cfg.HealthCheckURL == "" {
		cfg.HealthCheckURL = "http://{host}/healthcheck"
	}
	cfg.Dial = e.dial
	cfg.PollInterval = time.Millisecond
	cfg.Now = func() time.Time { return e.now }
	tg, err := dns.New(e.api, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return tg
}

func (e *env) weights() string {
	e.t.Helper()
	w, err := e.zone.Weights(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func notes(st *target.State) string {
	var b strings.Builder
	for _, n := range st.Notes {
		fmt.Fprintf(&b, "%s: %s\n", n.Name, n.Text)
	}
	return b.String()
}

func TestStatus(t *testing.T) {
	e := setup(t, dnstest.Options{})
	tg := e.target(dns.Config{})
	st, err := tg.Describe(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Kind != "dns" || st.Name != e.zone.Record {
		t.Errorf("kind, name = %q, %q", st.Kind, st.Name)
	}
	if st.Live.Color != release.Blue || st.Live.Weight != 100 || st.Off.Weight != 0 || st.Base != "" {
		t.Errorf("live %+v off %+v base %q; want blue 100%%", st.Live, st.Off, st.Base)
	}
	if st.Live.Commit != target.UnknownCommit || st.Live.Record != "A 10.0.0.1" || st.Live.Where() != "record A 10.0.0.1" {
		t.Errorf("live = %+v", st.Live)
	}
	if st.Live.Healthy == nil || !*st.Live.Healthy || len(st.Off.Instances) != 1 || st.Off.Instances[0].ID != "10.0.0.2" {
		t.Errorf("health: live %+v off %+v", st.Live, st.Off)
	}
	n := notes(st)
	for _, want := range []string{
		"record: blue " + e.zone.Record + ". -> A 10.0.0.1, weight 100, TTL 1m0s",
		"record: green " + e.zone.Record + ". -> A 10.0.0.2, weight 0, TTL 1m0s",
		"switched: unknown: the weights were not set by oops",
	} {
		if !strings.Contains(n, want) {
			t.Errorf("notes lack %q:\n%s", want, n)
		}
	}
	// The zone was found from the name: every suffix asked at once.
	if got := e.api.count("ListHostedZonesByName"); got != 4 {
		t.Errorf("ListHostedZonesByName %d times, want 4 (one per suffix of %s)", got, e.zone.Record)
	}

	// An install that never started ("" clears the mark): green's record
	// is what it was.
	before, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.SetInstalling(e.ctx, release.Green, shaB); err != nil {
		t.Fatal(err)
	}
	if err := tg.SetInstalling(e.ctx, release.Green, ""); err != nil {
		t.Fatal(err)
	}
	if st, err := tg.State(e.ctx); err != nil || st.Off.Commit != before.Off.Commit || st.Off.Installing {
		t.Fatalf("after clearing the mark off = %+v (%v), want %q as before", st.Off, err, before.Off.Commit)
	}
	if err := tg.SetInstalling(e.ctx, release.Green, shaB); err != nil {
		t.Fatal(err)
	}
	if err := tg.SetCommit(e.ctx, release.Blue, shaA); err != nil {
		t.Fatal(err)
	}
	st, err = tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Commit != shaA || st.Off.Commit != shaB || !st.Off.Installing {
		t.Errorf("after SetCommit: live %+v off %+v", st.Live, st.Off)
	}
	if err := tg.SetCommit(e.ctx, release.Green, shaB); err != nil {
		t.Fatal(err)
	}
	if st, _ = tg.State(e.ctx); st.Off.Installing || st.Off.Commit != shaB {
		t.Errorf("SetCommit left the installing mark: %+v", st.Off)
	}
	// The weights are untouched by bookkeeping.
	if w := e.weights(); w != "blue=100 green=0" {
		t.Errorf("weights %s", w)
	}
}

func TestRollbackIsOneChangeBatch(t *testing.T) {
	e := setup(t, dnstest.Options{TTL: 300})
	tg := e.target(dns.Config{HostedZoneID: e.zone.ID})
	e.api.pending = 2 // INSYNC on the third GetChange
	res, err := target.Switch(e.ctx, tg, target.SwitchOptions{VerifyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || res.Plan.From != release.Blue || res.Plan.To != release.Green {
		t.Fatalf("result %+v", res)
	}
	if w := e.weights(); w != "blue=0 green=100" {
		t.Errorf("weights %s, want blue=0 green=100", w)
	}
	if n := e.api.count("ChangeResourceRecordSets"); n != 1 {
		t.Fatalf("%d ChangeResourceRecordSets, want 1: %v", n, e.api.calls)
	}
	if n := e.api.count("GetChange"); n != 3 {
		t.Errorf("%d GetChange, want 3 (two PENDING, then INSYNC)", n)
	}
	if n := e.api.count("ListHostedZonesByName"); n != 0 {
		t.Errorf("hosted-zone-id is set, yet ListHostedZonesByName was called %d times", n)
	}
	b := e.api.batches[0]
	var got []string
	for _, c := range b.Changes {
		rs := c.ResourceRecordSet
		s := fmt.Sprintf("%s %s %s", c.Action, rs.Type, aws.ToString(rs.SetIdentifier))
		if rs.Weight != nil {
			s += fmt.Sprintf(" %d", *rs.Weight)
		}
		got = append(got, s)
	}
	if want := "UPSERT A blue 0, UPSERT A green 100, UPSERT TXT "; strings.Join(got, ", ") != want {
		t.Errorf("batch = %q, want %q", strings.Join(got, ", "), want)
	}

	// Status after: the old color may still be reached for a TTL.
	e.now = e.now.Add(100 * time.Second)
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := notes(st)
	if !strings.Contains(n, "switched: 1m40s ago (2026-12-01T02:00:00Z); TTL 5m0s: clients may reach blue until 2026-12-01T02:05:00Z (3m20s from now): stop it after that") {
		t.Errorf("notes:\n%s", n)
	}
	// The TXT record is in the zone: public, when the zone is. Who
	// switched (user@host: a login and an internal host name) stays in
	// oops history, out of it.
	if m, err := e.zone.Meta(e.ctx); err != nil || strings.Contains(m, "tester") || strings.Contains(m, "host") {
		t.Errorf("TXT record %q, %v: want no operator in it", m, err)
	}
	pr := st.Propagation
	if pr == nil || pr.TTLSeconds != 300 || !pr.SwitchedAt.Equal(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)) || !pr.OldColorUntil.Equal(time.Date(2026, 12, 1, 2, 5, 0, 0, time.UTC)) {
		t.Errorf("propagation %+v", pr)
	}
	e.now = e.now.Add(5 * time.Minute)
	st, _ = tg.State(e.ctx)
	if n := notes(st); !strings.Contains(n, "that has passed, so blue can be stopped") {
		t.Errorf("notes after the TTL:\n%s", n)
	}
}

func TestCanaryPromoteRollback(t *testing.T) {
	e := setup(t, dnstest.Options{})
	tg := e.target(dns.Config{})
	// oops shift 10: green gets 10%.
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Green, Weight: 10}); err != nil {
		t.Fatal(err)
	}
	if w := e.weights(); w != "blue=90 green=10" {
		t.Fatalf("weights %s", w)
	}
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Color != release.Blue || st.Live.Weight != 90 || st.Off.Weight != 10 || st.Base != release.Blue {
		t.Fatalf("canary state: live %+v off %+v base %q", st.Live, st.Off, st.Base)
	}
	if n := notes(st); !strings.Contains(n, "both colors take traffic (a canary)") {
		t.Errorf("notes:\n%s", n)
	}
	// Past half: green has the larger weight, the base stays blue.
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Green, Weight: 60}); err != nil {
		t.Fatal(err)
	}
	st, _ = tg.State(e.ctx)
	if st.Live.Color != release.Green || st.Base != release.Blue {
		t.Fatalf("at 60%%: live %s base %q", st.Live.Color, st.Base)
	}
	// oops rollback: back to the base, blue, whichever has more now.
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := e.weights(); w != "blue=100 green=0" {
		t.Fatalf("after rollback: %s", w)
	}
	st, _ = tg.State(e.ctx)
	if st.Base != "" || st.Live.Color != release.Blue {
		t.Fatalf("after rollback: live %s base %q", st.Live.Color, st.Base)
	}
	// Canary again, then promote: green gets everything.
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Green, Weight: 25}); err != nil {
		t.Fatal(err)
	}
	e.api.reset()
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Green}); err != nil {
		t.Fatal(err)
	}
	if w := e.weights(); w != "blue=0 green=100" {
		t.Fatalf("after promote: %s", w)
	}
	if n := e.api.count("ChangeResourceRecordSets"); n != 1 {
		t.Errorf("promote made %d ChangeResourceRecordSets, want 1", n)
	}
}

func TestHealthGate(t *testing.T) {
	e := setup(t, dnstest.Options{})
	e.apps[release.Green].Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	tg := e.target(dns.Config{})
	_, err := target.Switch(e.ctx, tg, target.SwitchOptions{})
	if !errors.Is(err, target.ErrUnhealthy) || !strings.Contains(err.Error(), "GET http://10.0.0.2/healthcheck: 503") {
		t.Fatalf("err = %v, want the green probe's 503", err)
	}
	if n := e.api.count("ChangeResourceRecordSets"); n != 0 || e.weights() != "blue=100 green=0" {
		t.Errorf("an unhealthy color got traffic (%d changes)", n)
	}
	// --force goes through.
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if w := e.weights(); w != "blue=0 green=100" {
		t.Errorf("weights %s", w)
	}
}

func TestRoute53HealthCheck(t *testing.T) {
	e := setup(t, dnstest.Options{})
	r53 := route53.NewFromConfig(awstest.Config(moto.URL))
	hc, err := r53.CreateHealthCheck(e.ctx, &route53.CreateHealthCheckInput{
		CallerReference: aws.String(e.zone.ID),
		HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp, IPAddress: aws.String("10.0.0.2"),
			Port: aws.Int32(80), ResourcePath: aws.String("/healthcheck")},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(hc.HealthCheck.Id)
	rs, err := e.zone.Records(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if aws.ToString(r.SetIdentifier) == "green" {
			r.HealthCheckId = aws.String(id)
			if err := e.zone.Change(e.ctx, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// No health-check-url: the Route 53 health check is the gate.
	tg, err := dns.New(e.api, dns.Config{DNSName: e.zone.Record, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.api.unhealthy[id] = true
	_, err = target.Switch(e.ctx, tg, target.SwitchOptions{})
	if !errors.Is(err, target.ErrUnhealthy) || !strings.Contains(err.Error(), "health check "+id) || !strings.Contains(err.Error(), "Failure: HTTP Status Code 503") {
		t.Fatalf("err = %v, want the failing health check", err)
	}
	delete(e.api.unhealthy, id)
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{VerifyTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if n := e.api.count("GetHealthCheckStatus"); n < 2 {
		t.Errorf("GetHealthCheckStatus %d times", n)
	}
}

func TestBrokenRecordSets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(e *env) error
		is    error
		msg   string
		hint  string
		live  release.Color
		fixed string // weights after oops repair; "" when repair refuses
	}{
		{
			name: "both weights zero",
			edit: func(e *env) error { return e.zone.SetWeight(e.ctx, release.Blue, 0) },
			is:   target.ErrInconsistent, msg: "both records of api.", hint: "oops repair --to blue",
			live: release.Blue,
		},
		{
			name: "third record",
			edit: func(e *env) error {
				return e.zone.Change(e.ctx, e.zone.Upsert(e.zone.Record, types.RRTypeA, "canary", 5, 60, "10.0.0.9"))
			},
			is: target.ErrInconsistent, msg: `has the weighted record api.` + "", hint: "delete it",
		},
		{
			name: "record missing",
			edit: func(e *env) error { return e.zone.Delete(e.ctx, "green") },
			is:   target.ErrMisconfigured, msg: "A has no green record (SetIdentifier green)", hint: "create it: a weighted A record",
		},
		{
			name: "types disagree",
			edit: func(e *env) error {
				return e.zone.Change(e.ctx,
					e.zone.Upsert(e.zone.Record, types.RRTypeAaaa, "blue", 0, 60, "fd00::1"),
					e.zone.Upsert(e.zone.Record, types.RRTypeAaaa, "green", 100, 60, "fd00::2"))
			},
			is: target.ErrInconsistent, msg: "disagree on the weights (A: blue 100, green 0; AAAA: blue 0, green 100)", hint: "oops repair",
			fixed: "blue=100 blue=100 green=0 green=0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, dnstest.Options{})
			if err := tc.edit(e); err != nil {
				t.Fatal(err)
			}
			tg := e.target(dns.Config{})
			st, err := tg.State(e.ctx)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("State: %v; want %v saying %q", err, tc.is, tc.msg)
			}
			var h interface{ Hint() string }
			if !errors.As(err, &h) || !strings.Contains(h.Hint(), tc.hint) {
				t.Errorf("hint of %v lacks %q", err, tc.hint)
			}
			if st == nil {
				t.Fatal("no state with the problem")
			}
			if tc.live != "" && st.Live.Color != tc.live {
				t.Errorf("live %s, want %s", st.Live.Color, tc.live)
			}
			before := e.weights()
			if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{Force: true}); !errors.Is(err, tc.is) {
				t.Errorf("a switch from a broken record set: %v", err)
			}
			if e.api.count("ChangeResourceRecordSets") != 0 || e.weights() != before {
				t.Errorf("a broken record set was changed")
			}
			_, rerr := tg.Repair(e.ctx)
			if tc.fixed == "" {
				if rerr == nil {
					t.Errorf("repair of %q went ahead; want an error", tc.name)
				}
				return
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			if w := e.weights(); w != tc.fixed {
				t.Errorf("after repair: %s, want %s", w, tc.fixed)
			}
			if _, err := tg.State(e.ctx); err != nil {
				t.Errorf("after repair: %v", err)
			}
		})
	}
}

func TestRepairBothZero(t *testing.T) {
	e := setup(t, dnstest.Options{})
	tg := e.target(dns.Config{})
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	// By hand: green's weight to 0 as well.
	if err := e.zone.SetWeight(e.ctx, release.Green, 0); err != nil {
		t.Fatal(err)
	}
	_, err := tg.State(e.ctx)
	var h interface{ Hint() string }
	if !errors.As(err, &h) || !strings.Contains(h.Hint(), "run `oops repair` to give green (live after oops's last switch) all traffic") {
		t.Fatalf("State: %v", err)
	}
	p, err := tg.PlanRepair(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.To != release.Green || !strings.Contains(p.Steps[0], "oops's last switch made it live") {
		t.Fatalf("plan %v", p)
	}
	if err := tg.Apply(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	if w := e.weights(); w != "blue=0 green=100" {
		t.Errorf("after repair: %s", w)
	}
	// --to picks the other one.
	if err := e.zone.SetWeight(e.ctx, release.Green, 0); err != nil {
		t.Fatal(err)
	}
	if p, err = tg.PlanRepair(e.ctx, release.Blue); err != nil {
		t.Fatal(err)
	}
	if err := tg.Apply(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	if w := e.weights(); w != "blue=100 green=0" {
		t.Errorf("after repair --to blue: %s", w)
	}
	// Nothing to repair now.
	if p, err := tg.PlanRepair(e.ctx, ""); p != nil || err != nil {
		t.Errorf("PlanRepair on a sound record set: %v, %v", p, err)
	}
}

func TestFaultOnChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rule    faultproxy.Rule
		ok      bool
		weights string
		msg     string
	}{
		{name: "refused", rule: faultproxy.Rule{Status: 400, Body: faultproxy.QueryError("Throttling", "Rate exceeded")},
			weights: "blue=100 green=0", msg: "Route 53 " + "api."},
		{name: "no answer, not made", rule: faultproxy.Rule{Cut: true},
			weights: "blue=100 green=0", msg: "nothing changed: the records are as before"},
		{name: "no answer, made", rule: faultproxy.Rule{Cut: true, After: true}, ok: true,
			weights: "blue=0 green=100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, dnstest.Options{})
			tg := e.target(dns.Config{})
			tc.rule.Action, tc.rule.Times = "ChangeResourceRecordSets", 1
			e.proxy.Add(tc.rule)
			_, err := target.Switch(e.ctx, tg, target.SwitchOptions{})
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %q", err, tc.msg)
			}
			if w := e.weights(); w != tc.weights {
				t.Errorf("weights %s, want %s", w, tc.weights)
			}
			// Consistent either way: the next command switches as usual.
			st, err := tg.State(e.ctx)
			if err != nil {
				t.Fatalf("state after the fault: %v", err)
			}
			if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{}); err != nil {
				t.Fatal(err)
			}
			if w := e.weights(); w == tc.weights {
				t.Errorf("the switch after the fault (from %s) changed nothing", st.Live.Color)
			}
		})
	}
}

// lost is a fence whose lock was taken over.
type lost struct{}

func (lost) Check(context.Context) error { return errors.New("lock lost to someone else") }
func (lost) Generation() int64           { return 1 }

func TestFenceBeforeChange(t *testing.T) {
	e := setup(t, dnstest.Options{})
	tg := e.target(dns.Config{})
	ctx := target.WithFence(e.ctx, lost{})
	if _, err := target.Switch(ctx, tg, target.SwitchOptions{}); err == nil || !strings.Contains(err.Error(), "lock lost") {
		t.Fatalf("err = %v", err)
	}
	if err := tg.SetCommit(ctx, release.Blue, shaA); err == nil {
		t.Fatal("SetCommit without the lock went ahead")
	}
	if n := e.api.count("ChangeResourceRecordSets"); n != 0 {
		t.Errorf("%d changes without the lock", n)
	}
}

func TestZoneLookup(t *testing.T) {
	e := setup(t, dnstest.Options{})
	// A second zone of the same name: oops will not guess.
	r53 := route53.NewFromConfig(awstest.Config(moto.URL))
	if _, err := r53.CreateHostedZone(e.ctx, &route53.CreateHostedZoneInput{Name: aws.String(strings.TrimSuffix(e.zone.Name, ".")), CallerReference: aws.String("dup-" + e.zone.ID)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.target(dns.Config{}).State(e.ctx)
	if !errors.Is(err, target.ErrMisconfigured) || !strings.Contains(err.Error(), "2 hosted zones are named "+e.zone.Name) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.target(dns.Config{HostedZoneID: "/hostedzone/" + e.zone.ID}).State(e.ctx); err != nil {
		t.Errorf("with hosted-zone-id: %v", err)
	}
	_, err = e.target(dns.Config{DNSName: "api.nowhere.invalid"}).State(e.ctx)
	if !errors.Is(err, target.ErrMisconfigured) || !strings.Contains(err.Error(), "no hosted zone") {
		t.Errorf("unknown zone: %v", err)
	}
}

func TestCNAME(t *testing.T) {
	e := setup(t, dnstest.Options{Type: types.RRTypeCname})
	tg, err := dns.New(e.api, dns.Config{DNSName: e.zone.Record})
	if err != nil {
		t.Fatal(err)
	}
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "CNAME blue.stack." + strings.TrimSuffix(e.zone.Name, "."); st.Live.Record != want {
		t.Errorf("record %q, want %q", st.Live.Record, want)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		cfg dns.Config
		msg string
	}{
		{dns.Config{}, "set dns-name"},
		{dns.Config{DNSName: "localhost"}, "is not a DNS name"},
		{dns.Config{DNSName: "http://api.example.com"}, "is not a DNS name"},
		{dns.Config{DNSName: "api.example.com", HealthCheckURL: "http://{ip}/"}, "has no {host}"},
	} {
		if _, err := dns.New(nil, tc.cfg); !errors.Is(err, target.ErrMisconfigured) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.msg)
		}
	}
}

// TestMotoBatchIsAtomic pins the launcher's correction of moto (see
// internal/awstest): a batch that fails leaves the zone as it was, as on
// AWS, so the tests' claims about one atomic switch hold.
func TestMotoBatchIsAtomic(t *testing.T) {
	e := setup(t, dnstest.Options{})
	err := e.zone.Change(e.ctx,
		e.zone.Upsert(e.zone.Record, types.RRTypeA, "blue", 0, 60, "10.0.0.1"),
		e.zone.Upsert(e.zone.Record, types.RRTypeA, "green", 100, 60, "10.0.0.2"),
		e.zone.Upsert("api.elsewhere.test", types.RRTypeA, "green", 100, 60, "10.0.0.2"))
	if err == nil {
		t.Fatal("a batch with a name outside the zone went through")
	}
	if w := e.weights(); w != "blue=100 green=0" {
		t.Errorf("a failed batch left weights %s; want them as before (blue=100 green=0)", w)
	}
}

// TestHandEditedTXT: an entry of oops's TXT record that oops cannot read
// is shown and left out, never in the way of a rollback, and the next
// switch writes the record afresh.
func TestHandEditedTXT(t *testing.T) {
	e := setup(t, dnstest.Options{})
	if err := e.zone.Change(e.ctx, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{
		Name: aws.String("_oops." + e.zone.Record), Type: types.RRTypeTxt, TTL: aws.Int64(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String(`"blue=` + shaA + `"`)}, {Value: aws.String(`"green=main"`)}},
	}}); err != nil {
		t.Fatal(err)
	}
	tg := e.target(dns.Config{})
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Commit != shaA || st.Off.Commit != target.UnknownCommit {
		t.Errorf("commits %q, %q", st.Live.Commit, st.Off.Commit)
	}
	if n := notes(st); !strings.Contains(n, `ignored: _oops.`+e.zone.Record+`. TXT entry "green=main": not a full commit SHA`) {
		t.Errorf("notes:\n%s", n)
	}
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := e.zone.Meta(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m, "main") || !strings.Contains(m, `"blue=`+shaA+`"`) {
		t.Errorf("TXT after the switch: %s", m)
	}
}

// TestSwitchKeepsAHandEditMadeMeanwhile: the records are read before the
// confirmation and the pre-switch hook, which can take minutes in an
// incident. A record edited by hand meanwhile (green pointed at a new
// stack) must not be put back as it was read: the change batch fails
// whole, the edit stays, and the error says to look again.
func TestSwitchKeepsAHandEditMadeMeanwhile(t *testing.T) {
	e := setup(t, dnstest.Options{})
	tg := e.target(dns.Config{})
	_, err := target.Switch(e.ctx, tg, target.SwitchOptions{Force: true,
		PreSwitch: func(context.Context, *target.State, *target.Plan) error {
			return e.zone.Change(e.ctx, e.zone.Upsert(e.zone.Record, types.RRTypeA, "green", 0, 60, "10.0.0.99"))
		}})
	if !errors.Is(err, target.ErrInconsistent) || !strings.Contains(err.Error(), "A green (was A 10.0.0.2 weight 0 TTL 1m0s, is A 10.0.0.99 weight 0 TTL 1m0s); nothing was changed") {
		t.Fatalf("switch over a record edited meanwhile: %v, want it refused", err)
	}
	rs, err := e.zone.Records(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if aws.ToString(r.SetIdentifier) == "green" && (len(r.ResourceRecords) != 1 || aws.ToString(r.ResourceRecords[0].Value) != "10.0.0.99") {
			t.Errorf("green's record is %+v, want the hand edit 10.0.0.99 kept", r.ResourceRecords)
		}
	}
	if w := e.weights(); w != "blue=100 green=0" {
		t.Errorf("weights %s, want unchanged", w)
	}
	// Read again, the switch goes through.
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{Force: true}); err != nil || e.weights() != "blue=0 green=100" {
		t.Fatalf("switch after: %v, weights %s", err, e.weights())
	}
}

// TestAliasRecords: alias A records to two load balancers are colors too:
// status shows them with the alias target's TTL, and a rollback moves the
// weights and keeps each alias target as it was.
func TestAliasRecords(t *testing.T) {
	e := setup(t, dnstest.Options{})
	alias := func(c release.Color, w int64) types.Change {
		return types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &types.ResourceRecordSet{
			Name: aws.String(e.zone.Record + "."), Type: types.RRTypeA, SetIdentifier: aws.String(string(c)), Weight: aws.Int64(w),
			AliasTarget: &types.AliasTarget{HostedZoneId: aws.String("Z35SXDOTRQ7X7K"), DNSName: aws.String(string(c) + "-alb.us-east-1.elb.amazonaws.com."), EvaluateTargetHealth: true},
		}}
	}
	if err := e.zone.Delete(e.ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	if err := e.zone.Delete(e.ctx, "green"); err != nil {
		t.Fatal(err)
	}
	if err := e.zone.Change(e.ctx, alias(release.Blue, 100), alias(release.Green, 0)); err != nil {
		t.Fatal(err)
	}
	tg := e.target(dns.Config{})
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Color != release.Blue || !strings.Contains(notes(st), "blue "+e.zone.Record+". -> alias A blue-alb.us-east-1.elb.amazonaws.com, weight 100, TTL 1m0s (the alias target's)") {
		t.Errorf("state: live %s, notes:\n%s", st.Live.Color, notes(st))
	}
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	rs, err := e.zone.Records(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rs {
		if r.AliasTarget == nil {
			t.Errorf("%s lost its alias target: %+v", aws.ToString(r.SetIdentifier), r)
			continue
		}
		got[aws.ToString(r.SetIdentifier)] = fmt.Sprintf("%d %s", aws.ToInt64(r.Weight), aws.ToString(r.AliasTarget.DNSName))
	}
	if got["blue"] != "0 blue-alb.us-east-1.elb.amazonaws.com." || got["green"] != "100 green-alb.us-east-1.elb.amazonaws.com." {
		t.Errorf("after rollback: %v", got)
	}
}
