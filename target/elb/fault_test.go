package elb_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// Fail each mutating call of a switch in turn, and cut the connection
// after each is applied (the change happens, oops never hears): the switch
// either completes or is undone on the spot (never undone once its delete
// took effect: that finishes it), and the next oops command
// finds every listener back, all on one color, with nothing to repair.
func TestFaultEachMutatingCall(t *testing.T) {
	t.Parallel()
	steps := []string{"AddTags", "ConfigureHealthCheck", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners", "SetLoadBalancerPoliciesOfListener"}
	for _, action := range steps {
		for _, mode := range []string{"fail", "cut-after"} {
			t.Run(action+"/"+mode, func(t *testing.T) {
				t.Parallel()
				// Policies on 443 and no listener record yet: the switch makes
				// all five kinds of call.
				e := setup(t, elbtest.Fixture{Listeners: elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy)}, elb.Options{})
				r := faultproxy.Rule{Action: action, Times: 1}
				if mode == "fail" {
					r.Status, r.Body = 503, faultproxy.QueryError("ServiceUnavailable", "injected")
				} else {
					r.Cut, r.After = true, true
				}
				e.proxy.Add(r)
				_, err := switchTo(e, target.SwitchOptions{})

				// Before the listeners were deleted, the switch is undone;
				// once the delete took effect, it is finished toward green.
				want := release.Blue
				if slices.Index(steps, action) > slices.Index(steps, "DeleteLoadBalancerListeners") ||
					action == "DeleteLoadBalancerListeners" && mode == "cut-after" {
					want = release.Green
				}
				if want == release.Blue && err == nil {
					t.Fatal("switch reported success although it was undone")
				}
				if want == release.Green && err != nil {
					t.Fatalf("switch completed at AWS but reported %v", err)
				}
				if err != nil && errors.Is(err, target.ErrInconsistent) {
					t.Fatalf("the undo should have worked, got %v", err)
				}
				if got := e.requireOneColor(elbtest.SSLPolicy); got != want {
					t.Errorf("%s is live, want %s\n%s", got, want, e.log)
				}
				// The next oops command: nothing left to repair.
				if msg, err := e.tgt.Repair(e.ctx); err != nil || msg != "" {
					t.Errorf("Repair = %q, %v; want nothing to do", msg, err)
				}
			})
		}
	}
}

// The switch fails half-way and so does the undo (AWS keeps refusing to
// create listeners): the error says run oops repair, status reports the
// missing listeners, and oops repair then brings them all back.
func TestUndoFailsTooThenRepair(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	e.proxy.Add(faultproxy.Rule{Action: "CreateLoadBalancerListeners", Times: 2, Status: 503, Body: faultproxy.QueryError("ServiceUnavailable", "injected")})
	_, err := switchTo(e, target.SwitchOptions{})
	if !errors.Is(err, target.ErrInconsistent) {
		t.Fatalf("Switch = %v, want ErrInconsistent", err)
	}
	var h interface{ Hint() string }
	if !errors.As(err, &h) || !strings.Contains(h.Hint(), "oops repair") {
		t.Errorf("no `oops repair` hint on %v", err)
	}
	if s := e.snap(); len(s.Listeners) != 0 {
		t.Fatalf("expected the listeners to be missing now, got %s", s)
	}
	st, err := e.tgt.State(e.ctx)
	if !errors.Is(err, target.ErrInconsistent) || !strings.Contains(err.Error(), "listener 80, 443 (recorded in tag oops:listeners) are missing") {
		t.Fatalf("State = %v", err)
	}
	if st == nil || st.Pending == nil {
		t.Fatalf("no pending switch reported: %+v", st)
	}
	msg, err := e.tgt.Repair(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "all listeners point at "+string(st.Pending.To)) {
		t.Errorf("Repair said %q", msg)
	}
	e.requireOneColor()
}

// killedBetweenDeleteAndCreate leaves e's ELB as a process killed right
// after DeleteLoadBalancerListeners leaves it: the create never arrives and
// nobody reads the ELB back.
func killedBetweenDeleteAndCreate(t *testing.T, e *env) {
	t.Helper()
	e.proxy.Add(faultproxy.Rule{Action: "CreateLoadBalancerListeners", Times: 1, Cut: true})
	// The switch's own read is the first DescribeLoadBalancers; the
	// recovery's read fails, as it would in a dead process.
	e.proxy.Add(faultproxy.Rule{Action: "DescribeLoadBalancers", Skip: 1, Times: 1, Status: 503, Body: faultproxy.QueryError("ServiceUnavailable", "injected")})
	if _, err := switchTo(e, target.SwitchOptions{}); !errors.Is(err, target.ErrInconsistent) {
		t.Fatalf("Switch = %v, want ErrInconsistent", err)
	}
	if s := e.snap(); len(s.Listeners) != 0 {
		t.Fatalf("listeners should be missing: %s", s)
	}
	e.proxy.Clear()
}

func TestKilledBetweenDeleteAndCreateRepairFinishes(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{Listeners: elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy)}, elb.Options{})
	killedBetweenDeleteAndCreate(t, e)
	st, err := e.tgt.State(e.ctx)
	if !errors.Is(err, target.ErrInconsistent) || st.Pending == nil || st.Pending.From != release.Blue || st.Pending.To != release.Green {
		t.Fatalf("State = %+v, %v; want pending blue -> green", st, err)
	}
	for _, w := range []string{"missing", "health check points at green (port 8081)", "oops repair", "oops rollback"} {
		if !strings.Contains(err.Error()+hintOf(err), w) {
			t.Errorf("status does not say %q: %v / %s", w, err, hintOf(err))
		}
	}
	p, err := e.tgt.PlanRepair(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Steps, "\n"); !strings.HasPrefix(got, "CreateLoadBalancerListeners") || strings.Contains(got, "Delete") {
		t.Errorf("repair should recreate the listeners first, and delete nothing:\n%s", got)
	}
	if err := e.tgt.Apply(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := e.requireOneColor(elbtest.SSLPolicy); got != release.Green {
		t.Errorf("repair left %s live, want green (where the switch was going)", got)
	}
}

// oops rollback after a kill finishes the interrupted switch.
func TestKilledBetweenDeleteAndCreateRollbackFinishes(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	killedBetweenDeleteAndCreate(t, e)
	res, err := switchTo(e, target.SwitchOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || res.Plan.To != release.Green {
		t.Errorf("result %+v", res.Plan)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("%s live, want green", got)
	}
}

// Interrupted after the health check moved, before the delete: traffic
// never left blue. Repair undoes it with one call; rollback finishes it.
func TestInterruptedBeforeDelete(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"repair", "rollback"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := setup(t, elbtest.Fixture{}, elb.Options{})
			e.proxy.Add(faultproxy.Rule{Action: "DeleteLoadBalancerListeners", Times: 1, Cut: true})
			e.proxy.Add(faultproxy.Rule{Action: "DescribeLoadBalancers", Skip: 1, Times: 1, Status: 503, Body: faultproxy.QueryError("ServiceUnavailable", "injected")})
			if _, err := switchTo(e, target.SwitchOptions{}); err == nil {
				t.Fatal("switch succeeded")
			}
			e.proxy.Clear()
			st, err := e.tgt.State(e.ctx)
			if !errors.Is(err, target.ErrInconsistent) || !strings.Contains(err.Error(), "interrupted switch blue -> green: the health check points at green (port 8081) while listeners 80, 443 still point at blue (port 8080)") {
				t.Fatalf("State = %v", err)
			}
			if st.Live.Color != release.Blue || st.Live.Weight != 100 {
				t.Errorf("traffic is on blue, State says %+v", st.Live)
			}
			if how == "repair" {
				if _, err := e.tgt.Repair(e.ctx); err != nil {
					t.Fatal(err)
				}
				if got := e.mutating(); !slices.Equal(got, []string{"ConfigureHealthCheck"}) {
					t.Errorf("repair made %v, want the health check moved back only", got)
				}
				if got := e.requireOneColor(); got != release.Blue {
					t.Errorf("%s live after undo, want blue", got)
				}
				return
			}
			if _, err := switchTo(e, target.SwitchOptions{Resume: true}); err != nil {
				t.Fatal(err)
			}
			if got := e.mutating(); !slices.Equal(got, []string{"DeleteLoadBalancerListeners", "CreateLoadBalancerListeners"}) {
				t.Errorf("finishing made %v, want delete and create only", got)
			}
			if got := e.requireOneColor(); got != release.Green {
				t.Errorf("%s live after finishing, want green", got)
			}
		})
	}
}

// With the health check elsewhere, the oops:switch tag is the record.
func TestIntentTagInterruptedThenRepaired(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{HealthCheck: "TCP:22"}, elb.Options{Who: "alice@ops"})
	killedBetweenDeleteAndCreate(t, e)
	st, err := e.tgt.State(e.ctx)
	if !errors.Is(err, target.ErrInconsistent) || st.Pending == nil {
		t.Fatalf("State = %v", err)
	}
	if st.Pending.To != release.Green || st.Pending.By != "alice@ops" || st.Pending.Started.IsZero() {
		t.Errorf("pending %+v, want to green by alice@ops with a start time", st.Pending)
	}
	if !strings.Contains(err.Error(), "tag oops:switch says a switch to green started") {
		t.Errorf("State = %v", err)
	}
	if _, err := e.tgt.Repair(e.ctx); err != nil {
		t.Fatal(err)
	}
	s := e.snap()
	if !slices.Equal(s.Listeners, onPort("8081")) || s.HealthCheck != "TCP:22 30/5/2/2" {
		t.Errorf("after repair: %s", s)
	}
	if _, ok := s.Tags["oops:switch"]; ok {
		t.Error("oops:switch left behind")
	}
	if _, err := e.tgt.State(e.ctx); err != nil {
		t.Errorf("State after repair: %v", err)
	}
}

// Listeners split by hand: repair needs to be told the color when nothing
// on the ELB says, and then moves every listener there.
func TestSplitListenersRepairTo(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{HealthCheck: "TCP:22", Listeners: []elbtest.Listener{
		{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP", InstancePort: 8080},
		{Port: 443, Protocol: "HTTPS", InstanceProtocol: "HTTP", InstancePort: 8081, Cert: elbtest.FakeCert},
	}}, elb.Options{})
	if _, err := e.tgt.PlanRepair(e.ctx, ""); err == nil || !strings.Contains(hintOf(err), "oops repair --to blue") {
		t.Fatalf("PlanRepair without a color = %v (hint %q)", err, hintOf(err))
	}
	p, err := e.tgt.PlanRepair(e.ctx, release.Green)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tgt.Apply(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	if s := e.snap(); !slices.Equal(s.Listeners, onPort("8081")) {
		t.Errorf("after repair --to green: %s", s)
	}
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
