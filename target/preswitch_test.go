package target_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// TestSwitchPreSwitch: PreSwitch is called last before the first change,
// after the health gate and the confirmation, with the plan; its error
// refuses the switch with nothing changed. A dry run does not call it.
func TestSwitchPreSwitch(t *testing.T) {
	errNo := errors.New("smoke test failed")
	for _, tc := range []struct {
		name  string
		err   error
		dry   bool
		calls []string
	}{
		{"goes ahead", nil, false, []string{"state", "plan green 100", "probe green", "confirm", "pre-switch green", "apply green 100"}},
		{"refuses", errNo, false, []string{"state", "plan green 100", "probe green", "confirm", "pre-switch green"}},
		{"dry run", nil, true, []string{"state", "plan green 100", "probe green"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			_, err := target.Switch(context.Background(), f.plain(), target.SwitchOptions{
				DryRun:  tc.dry,
				Confirm: func(*target.Plan) (bool, error) { f.log("confirm"); return true, nil },
				PreSwitch: func(_ context.Context, st *target.State, p *target.Plan) error {
					if st.Live.Color != release.Blue {
						t.Errorf("PreSwitch got state %+v", st)
					}
					f.log("pre-switch %s", p.To)
					return tc.err
				},
			})
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Switch: %v, want %v", err, tc.err)
			}
			f.wantCalls(t, tc.calls...)
		})
	}
}
