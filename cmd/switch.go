package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/backend"
	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// SwitchOptions are what the traffic-switching commands (rollback, shift,
// promote, off) run with: their flags, and the dependencies the run takes
// from the Factory (bound in newSwitchOptions, replaced in tests).
type SwitchOptions struct {
	IO     *IOStreams
	Runner func() *workflow.Runner
	// Target opens the target the command needs (a weighted one for shift
	// and promote, the preview ELB for off).
	Target  func(context.Context, backend.TargetOptions) (target.Target, error)
	Config  func() (*config.Config, error)
	Verify  func(flag time.Duration, set bool) (time.Duration, error) // --verify-timeout, else .oopsrc
	Confirm func(yes bool, question string) (bool, error)

	Yes, DryRun, Force bool
	Reason             string
	VerifyTimeout      time.Duration
	VerifySet          bool
	// Bake is --bake (BakeSet: given; else bake from .oopsrc).
	Bake    time.Duration
	BakeSet bool
	// NoLock (rollback --no-lock) switches without the lock when the store
	// cannot be reached.
	NoLock bool
	// To is rollback --to REV; Percent is oops shift PERCENT.
	To      string
	Percent int
	// Timeout is rollback --timeout: how long a cold color may take to
	// scale up (0: scale-timeout).
	Timeout time.Duration
}

func newSwitchOptions(f *Factory) *SwitchOptions {
	return &SwitchOptions{IO: f.IO, Runner: f.Runner, Target: func(ctx context.Context, o backend.TargetOptions) (target.Target, error) {
		return f.Backends().Target(ctx, o)
	}, Config: f.Config, Verify: verifyTimeoutOf(f.Config), Confirm: f.confirm}
}

func addSwitchFlags(c *cobra.Command, o *SwitchOptions) {
	fl := c.Flags()
	fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&o.DryRun, "dry-run", false, "print the exact plan (every API call) and change nothing")
	fl.BoolVar(&o.Force, "force", false, "switch even if the color fails its health probe")
	fl.StringVarP(&o.Reason, "message", "m", "", "why, recorded in history")
	fl.DurationVar(&o.VerifyTimeout, "verify-timeout", 0, "watch the new color this long after switching and switch back if it fails (default verify-timeout from .oopsrc, else 60s; 0: do not watch)")
	addBakeFlag(c, &o.Bake)
}

// addBakeFlag is --bake, on every command that switches traffic.
func addBakeFlag(c *cobra.Command, d *time.Duration) {
	c.Flags().DurationVar(d, "bake", 0, "after the switch, measure the new color this long and switch back after failure-limit failed measurements (default bake from .oopsrc; 0: no bake)")
}

// bakeFlag is --bake for the workflow: nil when not given (.oopsrc's
// applies), refused when negative.
func bakeFlag(d time.Duration, set bool) (*time.Duration, error) {
	if !set {
		return nil, nil
	}
	if d < 0 {
		return nil, usageErrorf("--bake must be 0 (no bake) or more, got %s", d)
	}
	return &d, nil
}

// switchCmd finishes a switching command: --verify-timeout is read, and
// the run is runF when given (flag tests), else run.
func switchCmd(c *cobra.Command, opts *SwitchOptions, runF, run func(context.Context, *SwitchOptions) error) *cobra.Command {
	addSwitchFlags(c, opts)
	check := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		opts.VerifySet, opts.BakeSet = cmd.Flags().Changed("verify-timeout"), cmd.Flags().Changed("bake")
		if _, err := bakeFlag(opts.Bake, opts.BakeSet); err != nil {
			return err
		}
		if check != nil {
			return check(cmd, args)
		}
		return nil
	}
	return runCmd(c, opts, runF, run)
}

// verify loads .oopsrc, then reads --verify-timeout: the order every
// switch checks them in (a .oopsrc that does not load is said first),
// before the target is opened.
func (o *SwitchOptions) verify() (time.Duration, error) {
	if _, err := o.Config(); err != nil {
		return 0, err
	}
	return o.Verify(o.VerifyTimeout, o.VerifySet)
}

// verifyTimeoutOf is --verify-timeout when given, else verify-timeout from
// .oopsrc (loaded by cfg only then), else 60s; 0 turns verification off.
func verifyTimeoutOf(cfg func() (*config.Config, error)) func(flag time.Duration, set bool) (time.Duration, error) {
	return func(flag time.Duration, set bool) (time.Duration, error) {
		if set {
			if flag < 0 {
				return 0, usageErrorf("--verify-timeout must be 0 (no verification) or more, got %s", flag)
			}
			return flag, nil
		}
		c, err := cfg()
		if err != nil {
			return 0, err
		}
		return workflow.VerifyTimeout(c), nil
	}
}

// switchTo moves t's traffic to color to ("": the off color; weight
// percent, 0: all) through the Switch workflow, watching it for vt, and
// prints what is live afterwards.
func switchTo(ctx context.Context, opts *SwitchOptions, t target.Target, to release.Color, weight int, vt time.Duration, req workflow.SwitchRequest) error {
	req.To, req.Weight, req.Verify = to, weight, vt
	req.Bake, _ = bakeFlag(opts.Bake, opts.BakeSet) // checked with the flags
	req.Force, req.DryRun, req.Reason, req.NoLock = opts.Force, opts.DryRun, opts.Reason, opts.NoLock
	req.Confirm = func(p *target.Plan) (bool, error) {
		if !opts.Yes {
			fmt.Fprint(opts.IO.ErrOut, p.String())
		}
		return opts.Confirm(opts.Yes, fmt.Sprintf("Switch %s from %s to %s?", t, p.From, p.To))
	}
	// Printed under the lock, as soon as the switch is made: a lock found
	// lost afterwards is said after it.
	req.Switched = func(res *target.SwitchResult) { printSwitched(opts.IO, t, opts.DryRun, res) }
	_, err := opts.Runner().Switch(ctx, t, req)
	return err
}

// printSwitched says what a switch made live (or would, on a dry run).
func printSwitched(io *IOStreams, t target.Target, dryRun bool, res *target.SwitchResult) {
	if res.Plan == nil {
		fmt.Fprintf(io.Out, "%s is already live on %s: nothing to do\n", res.Before.Live.Color, t)
		return
	}
	if dryRun {
		fmt.Fprint(io.Out, res.Plan.String())
		io.Progressf("dry run: nothing changed")
		return
	}
	now := res.Before.Color(res.Plan.To)
	if w := res.Plan.Weight; w > 0 && w < 100 {
		fmt.Fprintf(io.Out, "%d%% of traffic on %s goes to %s now (%s, commit %s); %s keeps %d%%\n",
			w, t, res.Plan.To, now.Where(), workflow.ShortCommit(now), res.Plan.From, 100-w)
		return
	}
	fmt.Fprintf(io.Out, "%s is live now on %s (%s, commit %s; was %s)\n",
		res.Plan.To, t, now.Where(), workflow.ShortCommit(now), res.Plan.From)
}

// deploy is the deploy of rev these switch flags ask for: rollback --to,
// and promote of an approved release, switch through the deploy path.
func (o *SwitchOptions) deploy(rev string) *DeployOptions {
	return &DeployOptions{IO: o.IO, Runner: o.Runner, Verify: o.Verify, Confirm: o.Confirm,
		Rev: rev, Yes: o.Yes, DryRun: o.DryRun, Force: o.Force, Reason: o.Reason,
		VerifyTimeout: o.VerifyTimeout, VerifySet: o.VerifySet, Bake: o.Bake, BakeSet: o.BakeSet, Timeout: o.Timeout}
}
