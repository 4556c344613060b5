package workflow

import (
	"context"
	"fmt"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// DefaultKeepWarm is how long the color switched away from stays at full
// size (keep-warm): a rollback in that time is one ModifyListener.
const DefaultKeepWarm = time.Hour

// DownscaleRequest is oops downscale.
type DownscaleRequest struct {
	// Force downscales inside keep-warm.
	Force, DryRun bool
	Reason        string
	// Confirm is asked before anything changes; nil: go ahead.
	Confirm func(p *target.Plan) (bool, error)
}

// DownscaleOutcome is what a downscale did (or, on a dry run, would do).
type DownscaleOutcome struct {
	// Plan is nil when the off color was at min-off-capacity already.
	Plan  *target.Plan
	Color release.Color
	Group string
	From  int
	To    int
	// LiveSince is when the live color's last switch was recorded (zero:
	// unknown); WarmUntil is LiveSince plus keep-warm.
	LiveSince, WarmUntil time.Time
}

// Downscale stands the off color by: its auto-scaling group scaled to
// min-off-capacity, under the lock, recorded. Inside keep-warm after the
// last switch it needs Force: the off color is what a rollback goes to.
func (r *Runner) Downscale(ctx context.Context, t target.Target, req DownscaleRequest) (*DownscaleOutcome, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	sc, ok := t.(target.Scaler)
	if !ok {
		return nil, target.Hinted(Usagef("%s has no auto-scaling groups to scale", t),
			`oops downscale is for an ALB whose colors are auto-scaling groups: set "blue-asg" and "green-asg" (or "asg-by-tag": true) in .oopsrc`)
	}
	keep := c.Values.KeepWarm
	if keep == 0 {
		keep = DefaultKeepWarm
	}
	minOff := 0
	if c.MinOffCapacity != nil {
		minOff = *c.MinOffCapacity
	}
	confirm := req.Confirm
	if confirm == nil {
		confirm = func(*target.Plan) (bool, error) { return true, nil }
	}
	out := &DownscaleOutcome{}
	ch := Change{Action: release.ActionDownscale, Command: "oops downscale", Reason: req.Reason, DryRun: req.DryRun}
	err = r.Locked(ctx, ch, func(ctx context.Context, ev *release.Event) error {
		ev.Target = t.String()
		st, err := t.State(ctx)
		if err != nil {
			return err
		}
		if st.Base != "" || st.Live.Weight < 100 {
			return target.Hinted(Usagef("traffic is split on %s (%s has %d%%): both colors serve", t, st.Live.Color, st.Live.Weight),
				"finish the canary with oops promote, or end it with oops rollback, then downscale")
		}
		off := st.Off
		// Traffic does not move: both sides are the color scaled in, so
		// that history does not read like a switch.
		ev.From = release.Side{Color: off.Color, Commit: off.Commit}
		ev.To = ev.From
		out.Color, out.To = off.Color, minOff
		if off.Group != nil {
			out.Group, out.From = off.Group.Name, off.Group.Desired
		}
		since, herr := r.liveSince(ctx, st.Live.Color, r.d.Now().Add(-keep))
		out.LiveSince = since
		if !since.IsZero() {
			out.WarmUntil = since.Add(keep)
		}
		if !req.Force {
			switch now := r.d.Now(); {
			case herr != nil:
				return target.Hinted(fmt.Errorf("downscale %s: cannot tell when %s went live (%w), so not whether keep-warm (%s) is over", off.Color, st.Live.Color, herr, keep),
					"oops downscale --force stands it by anyway")
			case !since.IsZero() && now.Before(out.WarmUntil):
				return target.Hinted(Usagef("%s went live %s ago: %s stays warm for a rollback until %s (keep-warm %s)",
					st.Live.Color, now.Sub(since).Round(time.Second), off.Color, out.WarmUntil.UTC().Format(time.RFC3339), keep),
					"oops downscale --force stands it by now; a rollback then scales it up first")
			}
		}
		p, err := sc.PlanScale(ctx, st, off.Color, minOff)
		if err != nil || p == nil {
			return err
		}
		out.Plan = p
		if req.DryRun {
			return nil
		}
		if err := confirmed(confirm(p)); err != nil {
			return err
		}
		return t.Apply(ctx, p)
	})
	return out, err
}

// liveSince is when color live last went live, by history: the newest
// recorded change that left it with the traffic. History is paged back
// until that change, or until events older than cutoff (then keep-warm is
// over whenever the switch was), so that many other events since (refused
// downscales, approvals) do not hide it. Zero with no error: no such
// change is recorded since cutoff.
func (r *Runner) liveSince(ctx context.Context, live release.Color, cutoff time.Time) (time.Time, error) {
	idx, err := r.d.Index(ctx)
	if err != nil {
		return time.Time{}, err
	}
	const page = 50
	q := store.EventQuery{Limit: page}
	for {
		evs, err := store.ListEvents(ctx, idx.Store(), idx.App(), q)
		if err != nil {
			return time.Time{}, err
		}
		for _, e := range evs {
			if e.Time.Before(cutoff) {
				return time.Time{}, nil
			}
			if e.Result != release.ResultOK || e.NoSwitch || e.To.Color != live {
				continue
			}
			switch e.Action {
			case release.ActionDeploy, release.ActionRollback, release.ActionSwitch, release.ActionPromote, release.ActionRepair:
				return e.Time, nil
			}
		}
		if len(evs) < page {
			return time.Time{}, nil
		}
		q.Before = evs[len(evs)-1].ID
	}
}
