package mock_test

import (
	"context"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/target"
)

// A call the test did not set up fails it with the method's name, not a
// nil dereference somewhere inside.
func TestNilFuncPanicsNamingTheMethod(t *testing.T) {
	ctx := context.Background()
	tgt := &mock.RepairTarget{}
	for name, call := range map[string]func(){
		"State":      func() { tgt.State(ctx) },
		"Plan":       func() { tgt.Plan(ctx, nil, "", 0) },
		"Apply":      func() { tgt.Apply(ctx, nil) },
		"Probe":      func() { tgt.Probe(ctx, "") },
		"Verify":     func() { tgt.Verify(ctx, "", 0) },
		"Repair":     func() { tgt.Repair(ctx) },
		"SetCommit":  func() { tgt.SetCommit(ctx, "", "") },
		"PlanRepair": func() { tgt.PlanRepair(ctx, "") },
		"Deploy":     func() { (&mock.Deployer{}).Deploy(ctx, target.DeployRequest{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r, _ := recover().(string)
				if !strings.Contains(r, name+" called") {
					t.Errorf("panic %q, want one naming %s", r, name)
				}
			}()
			call()
		})
	}
	if got := tgt.String(); got != "mock" {
		t.Errorf("String() = %q, want mock", got)
	}
}
