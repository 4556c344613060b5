package elb_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/internal/testport"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// colorServer is a color's health endpoint on 127.0.0.1; its port is the
// port in the ELB's tag for that color.
func colorServer(t *testing.T, status int) (port string, hits func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		if r.URL.Path != "/healthcheck" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	return p, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// deadPort is a loopback port nothing listens on, nor will during the test.
func deadPort(t *testing.T) string {
	return strconv.Itoa(testport.Get(t))
}

// The health gate refuses to switch to a color whose probe fails, changes
// nothing, and --force overrides it.
func TestHealthGate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		green   func(t *testing.T) string
		refused string
	}{
		{"healthy", func(t *testing.T) string { p, _ := colorServer(t, 200); return p }, ""},
		{"answers 500", func(t *testing.T) string { p, _ := colorServer(t, 500); return p }, "500 Internal Server Error"},
		{"not listening", deadPort, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blue, _ := colorServer(t, 200)
			green := tt.green(t)
			e := setup(t, elbtest.Fixture{Blue: blue, Green: green}, elb.Options{HealthCheckURL: "http://127.0.0.1:{port}/healthcheck"})
			_, err := switchTo(e, target.SwitchOptions{})
			if tt.refused == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, target.ErrUnhealthy) || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), "127.0.0.1:"+green) {
				t.Fatalf("Switch = %v, want refused naming the URL and %q", err, tt.refused)
			}
			if m := e.mutating(); len(m) != 0 {
				t.Fatalf("refused switch changed the ELB: %v", m)
			}
			if _, err := switchTo(e, target.SwitchOptions{Force: true}); err != nil {
				t.Fatalf("--force: %v", err)
			}
			if st, err := e.tgt.State(e.ctx); err != nil || st.Live.Color != release.Green {
				t.Errorf("after --force: %v %v", st, err)
			}
		})
	}
}

// With {ip} every registered instance is probed at its own address (the
// injected address function maps them to loopback addresses); one dead
// instance refuses the switch and is named.
func TestHealthGateProbesEachInstance(t *testing.T) {
	t.Parallel()
	blue, _ := colorServer(t, 200)
	green, hits := colorServer(t, 200)
	var e *env
	addrs := func(_ context.Context, ids []string) (map[string]string, error) {
		m := map[string]string{}
		for i, id := range ids {
			// The first instance answers; the second's address has nothing
			// listening (127.0.0.2 is loopback too).
			m[id] = "127.0.0." + strconv.Itoa(i+1)
		}
		return m, nil
	}
	e = setup(t, elbtest.Fixture{Blue: blue, Green: green, Instances: 2}, elb.Options{HealthCheckURL: "http://{ip}:{port}/healthcheck", Addresses: addrs})
	_, err := switchTo(e, target.SwitchOptions{})
	if !errors.Is(err, target.ErrUnhealthy) {
		t.Fatalf("Switch = %v, want unhealthy", err)
	}
	if !strings.Contains(err.Error(), e.ids[1]+": GET http://127.0.0.2:"+green+"/healthcheck") || strings.Contains(err.Error(), e.ids[0]) {
		t.Errorf("error should name only the dead instance %s: %v", e.ids[1], err)
	}
	if hits() != 1 {
		t.Errorf("the live instance was probed %d times, want 1", hits())
	}
}

// Verify after the switch: moto reports a running instance InService,
// accepted once the ELB's check has had time to judge the new port (65s
// on the fixture's 30/5/2/2 check). Reads before then decide nothing, so
// verify reads once (are there instances at all?), sleeps until then and
// reads again: not every PollInterval for a minute.
func TestVerifyInService(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{Instances: 2}, elb.Options{Now: clk.Now, Sleep: clk.Sleep, PollInterval: 20 * time.Second})
	start := clk.Now()
	res, err := switchTo(e, target.SwitchOptions{VerifyTimeout: time.Minute})
	if err != nil || res.Reverted {
		t.Fatalf("Switch = %+v, %v", res, err)
	}
	if n := e.proxy.Count("DescribeInstanceHealth"); n != 2 {
		t.Errorf("verify polled %d times, want 2 (0s, 65s)", n)
	}
	if d := clk.Now().Sub(start); d != 65*time.Second {
		t.Errorf("verify took %s, want 65s", d)
	}
}

// Simulation: moto cannot make an instance fail its health check, so the
// DescribeInstanceHealth answer is injected through the fault proxy. The
// new color goes OutOfService after the switch: oops switches back by
// itself and says so.
func TestSimulatedOutOfServiceSwitchesBack(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{Instances: 2, Listeners: elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy)}, elb.Options{Now: clk.Now, Sleep: clk.Sleep})
	e.proxy.Add(faultproxy.Rule{Action: "DescribeInstanceHealth", Status: 200, Body: elbtest.InstanceHealthXML("OutOfService", e.ids...)})
	res, err := switchTo(e, target.SwitchOptions{VerifyTimeout: time.Minute})
	if !errors.Is(err, target.ErrVerifyFailed) || res == nil || !res.Reverted {
		t.Fatalf("Switch = %+v, %v; want verification failed and reverted", res, err)
	}
	for _, w := range []string{e.ids[0] + " OutOfService", "traffic is back on blue"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q: %v", w, err)
		}
	}
	if !strings.Contains(e.log.String(), "switching back to blue") {
		t.Errorf("progress does not say it switches back:\n%s", e.log)
	}
	if got := e.requireOneColor(elbtest.SSLPolicy); got != release.Blue {
		t.Errorf("%s live after revert, want blue", got)
	}
}

// Simulation: instances still registering (Unknown) are waited for, with
// the injected sleep; InService then passes.
func TestSimulatedVerifyWaitsForInService(t *testing.T) {
	t.Parallel()
	var slept []time.Duration
	var now time.Time
	opts := elb.Options{
		PollInterval: 2 * time.Second,
		Now:          func() time.Time { return now },
		Sleep:        func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil },
	}
	e := setup(t, elbtest.Fixture{Instances: 1}, opts)
	e.proxy.Add(faultproxy.Rule{Action: "DescribeInstanceHealth", Times: 2, Status: 200, Body: elbtest.InstanceHealthXML("Unknown", e.ids...)})
	if _, err := switchTo(e, target.SwitchOptions{VerifyTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// Nothing is trusted before the check has judged the new port (65s
	// after it moved); then Unknown is waited for in 2s pauses.
	if want := []time.Duration{65 * time.Second, 2 * time.Second}; !slices.Equal(slept, want) || now.Sub(time.Time{}) != 67*time.Second {
		t.Errorf("slept %v (until %s), polled %d times; want %v", slept, now.Sub(time.Time{}), e.proxy.Count("DescribeInstanceHealth"), want)
	}
}

// Simulation: never InService within --verify-timeout: switch back.
func TestSimulatedVerifyTimesOut(t *testing.T) {
	t.Parallel()
	var now time.Time
	opts := elb.Options{
		Now:   func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil },
	}
	e := setup(t, elbtest.Fixture{Instances: 1}, opts)
	e.proxy.Add(faultproxy.Rule{Action: "DescribeInstanceHealth", Status: 200, Body: elbtest.InstanceHealthXML("Unknown", e.ids...)})
	_, err := switchTo(e, target.SwitchOptions{VerifyTimeout: 10 * time.Second})
	if !errors.Is(err, target.ErrVerifyFailed) || !strings.Contains(err.Error(), "not InService after 10s") {
		t.Fatalf("Switch = %v", err)
	}
	if got := e.requireOneColor(); got != release.Blue {
		t.Errorf("%s live, want blue", got)
	}
}

// Ctrl-C while verifying stops the wait; it does not switch back (which
// could put the bad release live again).
func TestInterruptedVerifyKeepsTheSwitch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := elb.Options{Sleep: func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }}
	e := setup(t, elbtest.Fixture{Instances: 1}, opts)
	e.ctx = ctx
	e.proxy.Add(faultproxy.Rule{Action: "DescribeInstanceHealth", Status: 200, Body: elbtest.InstanceHealthXML("Unknown", e.ids...)})
	res, err := switchTo(e, target.SwitchOptions{VerifyTimeout: time.Minute})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, target.ErrVerifyInterrupted) || res.Reverted || !strings.Contains(err.Error(), "the switch stands (green is live)") {
		t.Fatalf("Switch = %+v, %v", res, err)
	}
	e.ctx = awstest.Ctx(t)
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("%s live, want green", got)
	}
}

// A rollback away from a color that fails the ELB's check: right after
// the check moves, the instances still read OutOfService from the old
// (bad) port's check. That says nothing about the new color: Verify waits
// until the check has judged the new port, instead of failing at once and
// switching traffic back onto the bad color.
func TestSimulatedStaleOutOfServiceIsNotAFailure(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{Instances: 2}, elb.Options{Now: clk.Now, Sleep: clk.Sleep, PollInterval: 20 * time.Second})
	// The read at 0s still follows the old port's check; the next, once
	// the new port has been judged (65s), is moto's InService.
	e.proxy.Add(faultproxy.Rule{Action: "DescribeInstanceHealth", Times: 1, Status: 200, Body: elbtest.InstanceHealthXML("OutOfService", e.ids...)})
	res, err := switchTo(e, target.SwitchOptions{VerifyTimeout: time.Minute})
	if err != nil || res.Reverted {
		t.Fatalf("Switch = %+v, %v; want verified on green (the OutOfService reads were the old port's)\n%s", res, err, e.log)
	}
	// The wait is long: the operator is told at its start that traffic
	// has moved and that stopping the wait is safe.
	if !strings.Contains(e.log.String(), "traffic is already on green") || !strings.Contains(e.log.String(), "Ctrl-C stops the wait and leaves green live") {
		t.Errorf("progress does not say up front that green is live and Ctrl-C is safe:\n%s", e.log)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("%s live, want green", got)
	}
}
