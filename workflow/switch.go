package workflow

import (
	"context"
	"fmt"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// SwitchRequest is a traffic switch: rollback, shift, promote, off.
type SwitchRequest struct {
	// To is the color to send traffic to; "" is the off color (or, during
	// a canary, the color the canary started from).
	To release.Color
	// Weight is the share (percent) for To; 0 means all of it.
	Weight          int
	Force, DryRun   bool
	Reason          string
	Verify          time.Duration                    // watch To this long after switching; 0: do not
	Action, Command string                           // recorded in history and in the lock
	NoLock          bool                             // rollback --no-lock: only when the store cannot be reached
	NoLockOffer     string                           // the command offered when the store cannot be reached
	CommitOf        func(release.Color) string       // the commit a color runs, when t does not record it (oops off's preview ELB)
	Confirm         func(*target.Plan) (bool, error) // asked before the plan runs; nil: go ahead
	// Switched is told the result once the switch succeeded, still under
	// the lock: what it prints stands even when the final lease check then
	// finds the lock lost (the error says so). Nil: nothing.
	Switched func(*target.SwitchResult)
}

// Switch moves t's traffic as req says, under the lock, recorded as an
// event: the health gate, the BAD-release refusal of a rollback without
// --force, verification and the switch back, finishing an interrupted
// switch first (target.Switch). The result says what was live before and
// the plan run (nil Plan: nothing to do).
func (r *Runner) Switch(ctx context.Context, t target.Target, req SwitchRequest) (*target.SwitchResult, error) {
	ch := Change{Action: req.Action, Command: req.Command, Reason: req.Reason, DryRun: req.DryRun, WithoutLock: req.NoLock, NoLockOffer: req.NoLockOffer}
	var res *target.SwitchResult
	err := r.Locked(ctx, ch, func(ctx context.Context, ev *release.Event) error {
		ev.Target = t.String()
		so := r.SwitchOptions(ctx, req)
		so.Confirm = req.Confirm
		if c, err := r.d.Config(); err == nil && needsApproval(c, req.Action) {
			so.Check = func(st *target.State, to release.Color) error { return r.checkApproved(ctx, st, to) }
		}
		fill := func(res *target.SwitchResult) {
			if res == nil || res.Before == nil {
				return
			}
			if req.CommitOf != nil {
				for _, cs := range []*target.ColorState{&res.Before.Live, &res.Before.Off} {
					cs.Commit = req.CommitOf(cs.Color)
				}
			}
			FillEvent(ev, res)
		}
		if runsHooks(req.Action) {
			so.PreSwitch = func(ctx context.Context, st *target.State, p *target.Plan) error {
				fill(&target.SwitchResult{Before: st, Plan: p}) // the hook sees both sides
				return r.gateHook(ctx, StagePreSwitch, ev, colorURL(st, p.To), req.Force)
			}
		}
		var err error
		res, err = target.Switch(ctx, t, so)
		fill(res)
		r.switchHooks(ctx, ev, res, err)
		if err == nil && req.Switched != nil {
			req.Switched(res)
		}
		return err
	})
	return res, err
}

// SwitchOptions are the checks and settings of a switch: the BAD-release
// refusal for a rollback without --force, the health gate, resuming an
// interrupted switch. Confirmation is the caller's.
func (r *Runner) SwitchOptions(ctx context.Context, req SwitchRequest) target.SwitchOptions {
	var check func(*target.State, release.Color) error
	if req.Action == release.ActionRollback && !req.Force {
		check = func(st *target.State, to release.Color) error {
			if err := r.RefuseBad(ctx, st, to); err != nil {
				return err
			}
			return r.refuseAwaiting(ctx, st, to)
		}
	}
	return target.SwitchOptions{
		Check:         check,
		To:            req.To,
		Weight:        req.Weight,
		Force:         req.Force,
		DryRun:        req.DryRun,
		VerifyTimeout: req.Verify,
		Resume:        true,
		Logf:          r.d.Report.Progressf,
	}
}

// FillEvent records the two sides of a switch in its event.
func FillEvent(ev *release.Event, res *target.SwitchResult) {
	side := func(c release.Color) release.Side {
		s := release.Side{Color: c}
		if cs := res.Before.Color(c); cs.CommitKnown() {
			s.Commit = cs.Commit
		}
		return s
	}
	if res.Plan != nil {
		ev.From, ev.To = side(res.Plan.From), side(res.Plan.To)
		return
	}
	ev.From = side(res.Before.Live.Color)
}

// RefuseBad stops a rollback onto a color whose release is marked BAD:
// the off color is no longer a known-good target once it was rolled back
// from. --force overrides; --to picks another release.
func (r *Runner) RefuseBad(ctx context.Context, st *target.State, to release.Color) error {
	cs := st.Color(to)
	commit := cs.Commit
	if cs.Installing {
		r.warnf("%s runs %s, whose install never passed its health check: the health gate decides (oops status shows it)", to, release.Short(commit))
	}
	if !cs.CommitKnown() {
		return nil // nothing recorded about what runs there
	}
	c, err := r.d.Config()
	if err != nil {
		return err
	}
	s, err := r.d.Store(ctx)
	if err != nil {
		return err
	}
	if err := r.Marks(ctx, s, c.ApplicationName).CheckBad(commit); err != nil {
		return target.Hinted(fmt.Errorf("refusing to roll back to %s: %w", to, err),
			"roll back to a known-good release instead: oops rollback --to REV (oops list marks them); or pass --force if it has been fixed")
	}
	return nil
}

// Preflight is what `oops rollback` finds out before reading the target;
// doctor reports the same.
type Preflight struct {
	Target target.Target
	// NotServing says the switch would not bring traffic back by itself
	// (the local target with no oops proxy running): rollback warns,
	// doctor fails.
	NotServing error
}

// proxied is a target whose traffic goes through an oops proxy that may
// not be running (the local target).
type proxied interface {
	ProxyRunning(ctx context.Context) (bool, error)
}

// Preflight is the part of `oops rollback` (real and --dry-run) before the
// target is read: .oopsrc (every value parsed when it loaded, so nothing
// fails half-way), the target, and whether anything takes traffic there.
// The rest (state, the BAD-release refusal, the health gate, the plan) is
// Switch, which rollback runs under its lock and doctor as a dry run: both
// call these two, so doctor's verdict is the rollback's.
func (r *Runner) Preflight(ctx context.Context) (*Preflight, error) {
	if _, err := r.d.Config(); err != nil {
		return nil, err
	}
	t, err := r.d.Target(ctx)
	if err != nil {
		return nil, err
	}
	p := &Preflight{Target: t}
	if pt, ok := t.(proxied); ok {
		up, err := pt.ProxyRunning(ctx)
		switch {
		case err != nil:
			p.NotServing = fmt.Errorf("ask oops proxy: %w", err)
		case !up:
			p.NotServing = target.Hinted(fmt.Errorf("no oops proxy is running for %s: nothing takes traffic there, a switch only records the color the proxy starts with", t),
				"start it with: oops proxy (under systemd or your supervisor); see the Local target section of the README")
		}
	}
	return p, nil
}
