package workflow

import (
	"context"
	"fmt"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// RepairRequest is oops repair.
type RepairRequest struct {
	// To is the color to leave live when the target cannot say ("": the
	// one its own records point at).
	To     release.Color
	DryRun bool
	Reason string
	// Confirm is asked before anything changes. p is the plan, or nil for
	// a target that repairs without one. Nil: go ahead.
	Confirm func(p *target.Plan) (bool, error)
	// Repaired is told the outcome once the repair (or its dry run)
	// succeeded, still under the lock: what it prints stands even when the
	// final lease check then finds the lock lost. Nil: nothing.
	Repaired func(*RepairOutcome)
}

// RepairOutcome is what a repair did.
type RepairOutcome struct {
	// Plan is what was run (or, on a dry run, would be); nil when there
	// was nothing to repair or the target repairs without a plan.
	Plan *target.Plan
	// Live is the color that stays live when there was nothing to repair.
	Live release.Color
	// Message is what a target without a plan said it did ("": nothing).
	Message string
}

// Repair brings a half-switched or hand-edited target back to one live
// color, under the lock, recorded.
func (r *Runner) Repair(ctx context.Context, t target.Target, req RepairRequest) (*RepairOutcome, error) {
	if req.To != "" {
		// --to is for a target that cannot say which color is right; on a
		// consistent one it would be a switch, which is rollback's job.
		if st, err := t.State(ctx); err == nil && st.Live.Color != req.To {
			return nil, target.Hinted(Usagef("%s is consistent, with %s live: nothing to repair", t, st.Live.Color),
				fmt.Sprintf("to send traffic to %s, run oops rollback", req.To))
		}
	}
	confirm := req.Confirm
	if confirm == nil {
		confirm = func(*target.Plan) (bool, error) { return true, nil }
	}
	repaired := func(out *RepairOutcome, err error) error {
		if err == nil && req.Repaired != nil {
			req.Repaired(out)
		}
		return err
	}
	ch := Change{Action: release.ActionRepair, Command: "oops repair", Reason: req.Reason}
	out := &RepairOutcome{}
	rp, ok := t.(target.RepairPlanner)
	if !ok {
		if req.DryRun || req.To != "" {
			return nil, Usagef("%s cannot preview a repair or be told a color: run oops repair without --dry-run and --to", t)
		}
		return out, r.Locked(ctx, ch, func(ctx context.Context, ev *release.Event) error {
			ev.Target = t.String()
			if err := confirmed(confirm(nil)); err != nil {
				return err
			}
			msg, err := t.Repair(ctx)
			out.Message = msg
			return repaired(out, err)
		})
	}
	ch.DryRun = req.DryRun
	return out, r.Locked(ctx, ch, func(ctx context.Context, ev *release.Event) error {
		ev.Target = t.String()
		p, err := rp.PlanRepair(ctx, req.To)
		if err != nil {
			return err
		}
		if p == nil {
			st, err := t.State(ctx)
			if err != nil {
				return err
			}
			out.Live = st.Live.Color
			return repaired(out, nil)
		}
		out.Plan = p
		ev.From, ev.To = release.Side{Color: p.From}, release.Side{Color: p.To}
		if req.DryRun {
			return repaired(out, nil)
		}
		if err := confirmed(confirm(p)); err != nil {
			return err
		}
		return repaired(out, t.Apply(ctx, p))
	})
}

// confirmed turns a confirmation into the error of a "no".
func confirmed(ok bool, err error) error {
	if err == nil && !ok {
		err = target.ErrAborted
	}
	return err
}
