package workflow

import (
	"fmt"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// Canary says where a canary on st starts from (base) and which color it
// sends traffic to: the off color when all traffic is on one color, and
// the same color while a canary is in progress, whichever has more.
func Canary(st *target.State) (base, to release.Color) {
	if st.Base != "" {
		return st.Base, st.Base.Other()
	}
	return st.Live.Color, st.Off.Color
}

// ShiftStep is what `oops shift PERCENT` does on a state: switch to To
// with Weight percent (0: all of it), or nothing when To already has
// PERCENT.
type ShiftStep struct {
	To      release.Color
	Weight  int
	Nothing bool
}

// PlanShift is the step that sends percent of st's traffic to the canary
// color; 0 sends it all back where the canary started.
func PlanShift(st *target.State, percent int) ShiftStep {
	base, to := Canary(st)
	switch {
	case st.Color(to).Weight == percent:
		return ShiftStep{To: to, Weight: percent, Nothing: true}
	case percent == 0:
		return ShiftStep{To: base}
	case percent < 100:
		return ShiftStep{To: to, Weight: percent}
	}
	return ShiftStep{To: to}
}

// PromoteTo is the color `oops promote` sends all of t's traffic to: the
// canary color. With no canary in progress it is an error (exit 1), so a
// pipeline does not mistake a canary someone rolled back for a promoted
// one.
func PromoteTo(t target.Target, st *target.State) (release.Color, error) {
	if st.Base == "" {
		return "", target.Hinted(fmt.Errorf("promote: no canary in progress on %s: all traffic is on %s (commit %s)", t, st.Live.Color, ShortCommit(st.Live)),
			"start one with oops shift PERCENT or oops deploy REV --canary PERCENT")
	}
	_, to := Canary(st)
	return to, nil
}

// ShortCommit is the commit a color runs as the operator reads it.
func ShortCommit(c target.ColorState) string {
	if !c.CommitKnown() {
		return target.UnknownCommit
	}
	return release.Short(c.Commit)
}
