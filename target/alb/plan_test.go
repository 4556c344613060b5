package alb_test

import (
	"runtime"
	"strings"
	"testing"
	"weak"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// A plan carries its calls: another Target on the same ALB applies it,
// once.
func TestPlanAppliesThroughAnotherTarget(t *testing.T) {
	e := setup(t, albtest.Options{Ports: []int{80}})
	tg := e.target(alb.Config{})
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tg.Plan(e.ctx, st, release.Green, 100)
	if err != nil {
		t.Fatal(err)
	}
	other := e.target(alb.Config{})
	if err := other.Apply(e.ctx, p); err != nil {
		t.Fatalf("apply through another target: %v", err)
	}
	if got := e.weights(80); got != "blue=0 green=100" {
		t.Fatalf("listener forwards %s", got)
	}
	for _, x := range []*alb.Target{other, tg} {
		if err := x.Apply(e.ctx, p); err == nil || !strings.Contains(err.Error(), "applied already") {
			t.Errorf("second Apply = %v; want it refused as applied already", err)
		}
	}
	if n := e.proxy.Count("ModifyListener"); n != 1 {
		t.Errorf("%d ModifyListener calls, want 1", n)
	}
}

// --dry-run plans and is done: the Target keeps nothing of the plan.
func TestDryRunPlanLeavesNothingBehind(t *testing.T) {
	e := setup(t, albtest.Options{Ports: []int{80}})
	tg := e.target(alb.Config{})
	wp := dryRun(e, tg)
	runtime.GC()
	if wp.Value() != nil {
		t.Error("the dry-run plan is still reachable after the switch returned")
	}
	runtime.KeepAlive(tg)
}

// dryRun returns a weak pointer to a dry run's plan, so that nothing on the
// test's stack keeps the plan alive.
//
//go:noinline
func dryRun(e *env, tg *alb.Target) weak.Pointer[target.Plan] {
	res, err := target.Switch(e.ctx, tg, target.SwitchOptions{DryRun: true})
	if err != nil || res.Plan == nil {
		e.t.Fatalf("dry run = %+v, %v", res, err)
	}
	return weak.Make(res.Plan)
}
