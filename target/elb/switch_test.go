package elb_test

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// A rollback moves every color listener, keeping ports, protocols,
// certificate and policies, moves the health check keeping its path and
// timings, and leaves other listeners alone.
func TestRollbackMovesEveryColorListener(t *testing.T) {
	t.Parallel()
	ls := append(elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy),
		elbtest.Listener{Port: 2222, Protocol: "TCP", InstanceProtocol: "TCP", InstancePort: 22})
	e := setup(t, elbtest.Fixture{Listeners: ls}, elb.Options{})
	ssh := "TCP:2222->TCP:22"

	res, err := switchTo(e, target.SwitchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || res.Plan.From != release.Blue || res.Plan.To != release.Green {
		t.Fatalf("result %+v", res)
	}
	s := e.snap()
	if want := append(onPort("8081", elbtest.SSLPolicy), ssh); !slices.Equal(s.Listeners, sorted(want)) {
		t.Errorf("listeners after rollback:\n got %q\nwant %q", s.Listeners, sorted(want))
	}
	if s.HealthCheck != "HTTP:8081/healthcheck 30/5/2/2" {
		t.Errorf("health check %q", s.HealthCheck)
	}
	// First switch: the listener record is written before anything else,
	// with the switch in progress (oops:switch) until the policies of the
	// new listeners are re-attached.
	want := []string{"AddTags", "ConfigureHealthCheck", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners", "SetLoadBalancerPoliciesOfListener", "RemoveTags"}
	if got := e.mutating(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}

	// And back: the record is current; the tag write records the switch.
	e.proxy.Clear()
	if _, err := switchTo(e, target.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := e.mutating(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if s := e.snap(); !slices.Equal(s.Listeners, sorted(append(onPort("8080", elbtest.SSLPolicy), ssh))) || s.HealthCheck != "HTTP:8080/healthcheck 30/5/2/2" {
		t.Errorf("after two rollbacks: %s", s)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// The budget: a rollback of listeners 80 and 443 is two reads and three
// writes once the listener record exists (SetCommit at deploy writes it).
func TestRollbackCallBudget(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	if err := e.tgt.SetCommit(e.ctx, release.Blue, strings.Repeat("1", 40)); err != nil {
		t.Fatal(err)
	}
	e.proxy.Clear()
	if _, err := switchTo(e, target.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	calls := e.proxy.Calls()
	if len(calls) != 5 {
		t.Fatalf("rollback made %d ELB calls, want at most 5: %v", len(calls), calls)
	}
	reads := sorted(calls[:2])
	if !slices.Equal(reads, []string{"DescribeLoadBalancers", "DescribeTags"}) ||
		!slices.Equal(calls[2:], []string{"ConfigureHealthCheck", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners"}) {
		t.Errorf("calls %v", calls)
	}
	if e.proxy.Count("DeleteLoadBalancerListeners") != 1 || e.proxy.Count("CreateLoadBalancerListeners") != 1 {
		t.Error("listeners were not deleted and created in one call each")
	}
	e.requireOneColor()
}

// --dry-run: the plan names each call exactly, and nothing changes.
func TestDryRunPlanIsExactAndChangesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{Listeners: elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy)}, elb.Options{})
	before := e.snap()
	res, err := switchTo(e, target.SwitchOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Switched {
		t.Fatal("dry run switched")
	}
	plan := res.Plan.String()
	for _, w := range []string{
		"switch blue -> green:",
		"AddTags " + e.name + " Key=oops:listeners,Value=",
		"ConfigureHealthCheck " + e.name + " Target=HTTP:8081/healthcheck,Interval=30,Timeout=5,UnhealthyThreshold=2,HealthyThreshold=2",
		"DeleteLoadBalancerListeners " + e.name + " LoadBalancerPorts=80,443",
		"CreateLoadBalancerListeners " + e.name + " Protocol=HTTP,LoadBalancerPort=80,InstanceProtocol=HTTP,InstancePort=8081 Protocol=HTTPS,LoadBalancerPort=443,InstanceProtocol=HTTPS,InstancePort=8081,SSLCertificateId=" + elbtest.FakeCert,
		"SetLoadBalancerPoliciesOfListener " + e.name + " LoadBalancerPort=443 PolicyNames=" + elbtest.SSLPolicy,
	} {
		if !strings.Contains(plan, w) {
			t.Errorf("plan lacks %q:\n%s", w, plan)
		}
	}
	if m := e.mutating(); len(m) != 0 {
		t.Errorf("dry run made changes: %v", m)
	}
	if after := e.snap(); after.String() != before.String() {
		t.Errorf("dry run changed the ELB:\n%s\n%s", before, after)
	}
}

// When the health check is not on a color port it cannot record the
// switch; the tag oops:switch does, and is gone afterwards.
func TestIntentTagWhenHealthCheckIsElsewhere(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{HealthCheck: "TCP:22"}, elb.Options{Who: "alice@ops"})
	if _, err := switchTo(e, target.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"AddTags", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners", "RemoveTags"}
	if got := e.mutating(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	s := e.snap()
	if !slices.Equal(s.Listeners, onPort("8081")) || s.HealthCheck != "TCP:22 30/5/2/2" {
		t.Errorf("after switch: %s", s)
	}
	if _, ok := s.Tags["oops:switch"]; ok {
		t.Errorf("oops:switch left behind")
	}
}

// weights are for targets that can split traffic; an ELB cannot.
func TestPlanRefusesWeights(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	if _, err := switchTo(e, target.SwitchOptions{Weight: 10}); err == nil || !strings.Contains(err.Error(), "cannot split traffic") {
		t.Errorf("Switch with weight 10 = %v", err)
	}
	if m := e.mutating(); len(m) != 0 {
		t.Errorf("changes made: %v", m)
	}
}
