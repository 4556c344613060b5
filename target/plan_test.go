package target_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// Run makes a plan's calls once; running it again would replay calls made
// for a state that is gone. A plan without calls is refused, not taken for
// a switch that needed none.
func TestPlanRunsOnce(t *testing.T) {
	runs := 0
	boom := errors.New("boom")
	p := target.NewPlan(release.Blue, release.Green, 100, []string{"one call"}, func(context.Context) error {
		runs++
		return boom
	})
	if err := p.Run(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("first Run = %v, want the calls' error", err)
	}
	if err := p.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "applied already") {
		t.Errorf("second Run = %v, want it refused as applied already", err)
	}
	if runs != 1 {
		t.Errorf("the calls ran %d times, want once", runs)
	}
	bare := &target.Plan{From: release.Blue, To: release.Green, Weight: 100}
	if err := bare.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "not made by a target's Plan") {
		t.Errorf("Run of a plan without calls = %v, want it refused", err)
	}
}
