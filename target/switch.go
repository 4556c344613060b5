package target

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oops-deploy/oops/release"
)

// SwitchOptions controls Switch.
type SwitchOptions struct {
	// To is the color to send traffic to; empty means the off color.
	To release.Color
	// Weight is the share of traffic for To, in percent (0 means 100).
	Weight int
	// Force skips the health gate.
	Force bool
	// DryRun returns the plan without changing anything.
	DryRun bool
	// VerifyTimeout bounds the post-switch verification; 0 skips it.
	VerifyTimeout time.Duration
	// Confirm is asked before the first change (nil: proceed). Returning
	// false aborts with ErrAborted.
	Confirm func(p *Plan) (bool, error)
	// PreSwitch, when set, is called last before the first change (after
	// the health gate and Confirm) with the state read and the plan; an
	// error refuses the switch (oops's pre-switch hook). Not called on a
	// dry run.
	PreSwitch func(ctx context.Context, st *State, p *Plan) error
	// Bake, when set, watches color to after the switch and verification
	// (oops's bake): an error wrapping ErrAnalysisFailed switches back
	// (ErrVerifyFailed); an interrupt leaves traffic where it is.
	Bake func(ctx context.Context, to release.Color) error
	// Logf receives progress lines (stderr).
	Logf func(format string, args ...any)
	// Check, when set, may refuse the switch to color to, given the state
	// read under the caller's lock, before anything is probed or changed
	// (oops rollback refuses a color running a release marked BAD). It is
	// not asked when Resume finishes an interrupted switch (see Switch).
	Check func(st *State, to release.Color) error
	// Resume finishes an interrupted switch instead of refusing: when State
	// reports one (State.Pending with an error) and the target is a
	// RepairPlanner, the switch goes to Pending.To (or To, when set)
	// through PlanRepair, with the same gate, confirmation and verification.
	Resume bool
}

// ErrAborted: the operator declined the confirmation.
var ErrAborted = errors.New("aborted")

// SwitchResult says what Switch did.
type SwitchResult struct {
	Before   *State
	Plan     *Plan
	Switched bool
	// Reverted is true when verification failed and traffic went back.
	Reverted bool
}

// Switch moves traffic on t: health gate, plan, confirm, apply, verify, and
// switch back automatically if the new color does not hold up.
func Switch(ctx context.Context, t Target, opts SwitchOptions) (*SwitchResult, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	st, err := t.State(ctx)
	var plan *Plan
	var to release.Color
	if err != nil {
		rp, ok := t.(RepairPlanner)
		if !opts.Resume || !ok || st == nil || st.Pending == nil {
			if st == nil {
				return nil, err
			}
			return &SwitchResult{Before: st}, err
		}
		// opts.Check is not asked here, on purpose: whether to refuse that
		// switch (or --force it) was decided when it started, under its own
		// lock, and a load balancer left half-switched (listeners missing,
		// traffic split) must be brought to one color whatever it runs.
		// The health gate still applies; oops repair --to picks the other
		// color. TestSwitchResumeDoesNotCheck pins it.
		to = opts.To
		if to == "" {
			to = st.Pending.To
		}
		logf("%v", err)
		logf("finishing the interrupted switch: %s goes live", to)
		if plan, err = rp.PlanRepair(ctx, to); err != nil {
			return &SwitchResult{Before: st}, err
		}
		if plan == nil {
			return &SwitchResult{Before: st}, nil
		}
	}
	res := &SwitchResult{Before: st}
	if plan == nil {
		to = opts.To
		if to == "" {
			to = st.Off.Color
			if st.Base != "" {
				// Undo a canary, whichever color has more traffic now.
				to = st.Base
			}
		}
		weight := opts.Weight
		if weight == 0 {
			weight = 100
		}
		if st.Live.Color == to && st.Live.Weight >= weight && weight == 100 {
			return res, nil
		}
		if opts.Check != nil {
			if err := opts.Check(st, to); err != nil {
				return res, err
			}
		}
		if plan, err = t.Plan(ctx, st, to, weight); err != nil {
			return res, err
		}
	}
	res.Plan = plan
	if !opts.Force {
		logf("checking health of %s before switching", to)
		if err := t.Probe(ctx, to); err != nil {
			return res, fmt.Errorf("refusing to switch to %s: %w (use --force to switch anyway)", to, err)
		}
	}
	if opts.DryRun {
		return res, nil
	}
	if opts.Confirm != nil {
		ok, err := opts.Confirm(plan)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, ErrAborted
		}
	}
	if opts.PreSwitch != nil {
		if err := opts.PreSwitch(ctx, st, plan); err != nil {
			return res, err
		}
	}
	if err := t.Apply(ctx, plan); err != nil {
		return res, err
	}
	res.Switched = true
	logf("switched %s: %s -> %s", t, plan.From, plan.To)
	var verr error
	if opts.VerifyTimeout > 0 {
		logf("verifying %s for up to %s", to, opts.VerifyTimeout)
		if verr = t.Verify(ctx, to, opts.VerifyTimeout); verr != nil && ctx.Err() == nil {
			logf("%s did not become healthy (%v): switching back to %s", to, verr, plan.From)
		}
	}
	if verr == nil && opts.Bake != nil {
		if verr = opts.Bake(ctx, to); verr != nil && ctx.Err() == nil {
			if !errors.Is(verr, ErrAnalysisFailed) {
				// The bake could not go on (not a verdict): the switch stands.
				return res, verr
			}
			logf("%v: switching back to %s", verr, plan.From)
		}
	}
	if verr == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		// The operator stopped the wait (Ctrl-C): that says nothing about
		// the new color, and switching back could put a bad release live.
		return res, fmt.Errorf("%s: %w (%s is live): %w", to, ErrVerifyInterrupted, to, context.Cause(ctx))
	}
	// Revert with a fresh context: the operator's deadline may be what expired.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	back, err := t.State(rctx)
	if err != nil {
		return res, fmt.Errorf("%w: %v; switching back failed: %v", ErrVerifyFailed, verr, err)
	}
	revertTo, revertWeight := plan.From, 100
	if st.Base != "" {
		// Traffic was split before (a canary): restore that split exactly.
		revertTo, revertWeight = to, st.Color(to).Weight
	}
	rp, err := t.Plan(rctx, back, revertTo, revertWeight)
	if err == nil {
		err = t.Apply(rctx, rp)
	}
	if err != nil {
		return res, fmt.Errorf("%w: %v; switching back failed: %v (run oops repair)", ErrVerifyFailed, verr, err)
	}
	res.Reverted = true
	backOn := string(plan.From)
	if st.Base != "" {
		backOn = fmt.Sprintf("the split it had (%d%% on %s)", revertWeight, to)
	}
	if errors.Is(verr, ErrAnalysisFailed) {
		// Callers tell a failed bake from a failed health check.
		return res, fmt.Errorf("%w: %s: %w; traffic is back on %s", ErrVerifyFailed, to, verr, backOn)
	}
	return res, fmt.Errorf("%w: %s: %v; traffic is back on %s", ErrVerifyFailed, to, verr, backOn)
}
