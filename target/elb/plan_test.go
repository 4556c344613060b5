package elb_test

import (
	"runtime"
	"strings"
	"testing"
	"weak"

	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// A plan carries its calls: another Target on the same ELB (another
// process's, a caller that opened the target twice) applies it, once.
func TestPlanAppliesThroughAnotherTarget(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	st, err := e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.tgt.Plan(e.ctx, st, release.Green, 100)
	if err != nil {
		t.Fatal(err)
	}
	other := elb.New(elbsdk.NewFromConfig(e.cfg), e.name, elb.Options{Region: awstest.Region, Logf: e.log.logf})
	if err := other.Apply(e.ctx, p); err != nil {
		t.Fatalf("apply through another target: %v\n%s", err, e.log)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Fatalf("%s live, want green", got)
	}
	calls := len(e.mutating())
	for _, tg := range []*elb.Target{other, e.tgt} {
		err := tg.Apply(e.ctx, p)
		if err == nil || !strings.Contains(err.Error(), "applied already") {
			t.Errorf("second Apply = %v; want it refused as applied already", err)
		}
	}
	if got := e.mutating()[calls:]; len(got) > 0 {
		t.Errorf("a refused Apply changed the ELB: %v", got)
	}
}

// A State read before a change no longer says what the ELB is: Plan reads
// again rather than planning from it (a plan from the old read would find
// nothing to do, or undo the change). A State built elsewhere is read again
// too.
func TestPlanFromAStateReadBeforeAChangeReadsAgain(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	before, err := e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := switchTo(e, target.SwitchOptions{To: release.Green}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*target.State{before, {}} {
		p, err := e.tgt.Plan(e.ctx, st, release.Green, 100)
		if err != nil {
			t.Fatal(err)
		}
		if p.From != release.Green || len(p.Steps) != 0 {
			t.Errorf("plan to green from a stale or foreign State: from %s, steps %q; want from green, nothing to do", p.From, p.Steps)
		}
	}
	p, err := e.tgt.Plan(e.ctx, before, release.Blue, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tgt.Apply(e.ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := e.requireOneColor(); got != release.Blue {
		t.Errorf("%s live, want blue", got)
	}
}

// --dry-run plans and is done: the Target keeps nothing of the plan (it
// used to keep every plan made in a map until Apply).
func TestDryRunPlanLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	wp := dryRun(e)
	runtime.GC()
	if wp.Value() != nil {
		t.Error("the dry-run plan is still reachable after the switch returned")
	}
	runtime.KeepAlive(e.tgt)
}

// dryRun returns a weak pointer to a dry run's plan, so that nothing on the
// test's stack keeps the plan alive.
//
//go:noinline
func dryRun(e *env) weak.Pointer[target.Plan] {
	res, err := switchTo(e, target.SwitchOptions{DryRun: true})
	if err != nil || res.Plan == nil {
		e.t.Fatalf("dry run = %+v, %v", res, err)
	}
	return weak.Make(res.Plan)
}
