package workflow

import (
	"errors"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// split is a state with blue live at 100-w percent and green at w; base is
// where a canary started ("" when none is in progress).
func split(base release.Color, blue, green int) *target.State {
	st := &target.State{
		Live: target.ColorState{Color: release.Blue, Weight: blue, Commit: "aaaaaaa1"},
		Off:  target.ColorState{Color: release.Green, Weight: green, Commit: "bbbbbbb2"},
		Base: base,
	}
	if green > blue {
		st.Live, st.Off = st.Off, st.Live
	}
	return st
}

func TestPlanShift(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		st      *target.State
		percent int
		want    ShiftStep
	}{
		{"start a canary on the off color", split("", 100, 0), 10, ShiftStep{To: release.Green, Weight: 10}},
		{"raise it", split(release.Blue, 90, 10), 50, ShiftStep{To: release.Green, Weight: 50}},
		// The canary color keeps its role when it has more than the base.
		{"past half it is still the canary", split(release.Blue, 40, 60), 75, ShiftStep{To: release.Green, Weight: 75}},
		{"0 sends all back to the base", split(release.Blue, 40, 60), 0, ShiftStep{To: release.Blue}},
		{"100 is all of it", split(release.Blue, 90, 10), 100, ShiftStep{To: release.Green}},
		{"the same percent again", split(release.Blue, 75, 25), 25, ShiftStep{To: release.Green, Weight: 25, Nothing: true}},
		{"0 with no canary: nothing", split("", 100, 0), 0, ShiftStep{To: release.Green, Nothing: true}},
	}
	for _, tt := range tests {
		if got := PlanShift(tt.st, tt.percent); got != tt.want {
			t.Errorf("%s: PlanShift(%d) = %+v, want %+v", tt.name, tt.percent, got, tt.want)
		}
	}
}

func TestPromoteTo(t *testing.T) {
	t.Parallel()
	mt := &mock.Target{}
	to, err := PromoteTo(mt, split(release.Blue, 60, 40))
	if err != nil || to != release.Green {
		t.Errorf("canary from blue: %v, %v; want green", to, err)
	}
	_, err = PromoteTo(mt, split("", 100, 0))
	if err == nil || !strings.Contains(err.Error(), "no canary in progress on mock: all traffic is on blue (commit aaaaaaa)") {
		t.Errorf("no canary: %v", err)
	}
	if HintOf(err) == "" || errors.Is(err, target.ErrInconsistent) {
		t.Errorf("no canary: want a hint to start one, and a plain failure (exit 1): %v", err)
	}
}
