package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// switchOptions are the flags every traffic-switching command shares.
type switchOptions struct {
	Yes, DryRun, Force bool
	Reason             string
	VerifyTimeout      time.Duration
	verifySet          bool
	// Weight is the share (percent) of traffic for the color switched to;
	// 0 means all of it. Set by oops shift and deploy --canary (ALB).
	Weight int
	// commitOf names the commit a color runs when the switched target does
	// not record it (the preview ELB of oops off: the main ELB does).
	commitOf func(release.Color) string
	// NoLock (rollback --no-lock) switches without the lock when the store
	// cannot be reached; noLockOffer is the command offered for that.
	NoLock      bool
	noLockOffer string
}

func addSwitchFlags(c *cobra.Command, o *switchOptions) {
	fl := c.Flags()
	fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&o.DryRun, "dry-run", false, "print the exact plan (every API call) and change nothing")
	fl.BoolVar(&o.Force, "force", false, "switch even if the color fails its health probe")
	fl.StringVarP(&o.Reason, "message", "m", "", "why, recorded in history")
	fl.DurationVar(&o.VerifyTimeout, "verify-timeout", 0, "watch the new color this long after switching and switch back if it fails (default verify-timeout from .oopsrc, else 60s; 0: do not watch)")
}

func newRollbackCmd(f *Factory) *cobra.Command {
	var opts switchOptions
	var to string
	c := &cobra.Command{
		Use:   "rollback",
		Short: "Send all traffic back to the off color, now",
		Long: `Point the load balancer at the off color, which still runs the previous
release: no rebuild, no redeploy.

Before switching, the off color is probed at health-check-url (when set);
oops refuses if it does not answer, unless --force. After switching, the
instances' health is watched for --verify-timeout; if they go out of
service, traffic is switched back automatically (exit 10).

On a Classic ELB a rollback is 5 API calls: 2 reads, then the health check,
one delete and one create of all listeners (see the README for the design
and crash safety). If an earlier switch was interrupted, rollback finishes
it instead.

The release a rollback leaves is marked BAD (oops list shows it, with -m
as the reason); deploying it again needs --force. A rollback onto a color
whose release is marked BAD is refused (exit 12) unless --force: choose a
known-good release with --to REV instead, which switches to it when the
off color runs it and otherwise deploys it to the off color first.

On a terminal oops asks before switching; scripts pass --yes. --dry-run
prints every call it would make and changes nothing.

When the store (S3 bucket or folder) cannot be reached, rollback cannot
take the lock and says so. --no-lock then switches without it (health gate
and verification still apply) and keeps the event in
$XDG_STATE_HOME/oops/spool (~/.local/state/oops/spool): the next oops
command that reaches the store appends it to history. --no-lock is refused
(exit 2) while the store can be reached.`,
		Example: `  oops rollback
  oops rollback --yes -m "500s after 4f2a1c9"
  oops rollback --to v1.4.1 --yes -m "the last two releases break checkout"
  oops rollback --dry-run
  oops rollback --yes --force --verify-timeout 0
  oops rollback --yes --no-lock -m "S3 is down too"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.verifySet = cmd.Flags().Changed("verify-timeout")
			if to != "" && opts.NoLock {
				return withHint(usageErrorf("--no-lock cannot be combined with --to: the release to go to is read from the store"),
					"roll back to the off color: oops rollback --no-lock")
			}
			opts.noLockOffer = "oops rollback --no-lock"
			if to != "" {
				return f.runRollbackTo(cmd.Context(), to, opts)
			}
			return f.runSwitch(cmd.Context(), opts, release.ActionRollback, "oops rollback")
		},
	}
	addSwitchFlags(c, &opts)
	c.Flags().BoolVar(&opts.NoLock, "no-lock", false, "only when the store cannot be reached: switch without the lock, keep the event on this machine until it can")
	c.Flags().StringVar(&to, "to", "", "roll back to this earlier release (`REV`): switch to it if the off color runs it, else deploy it there first")
	return c
}

// runRollbackTo rolls back to a chosen release: a plain switch when the
// off color already runs it (warm), else the deploy path (install on the
// off color, wait until healthy, switch), recorded as a rollback so the
// release it leaves is marked BAD.
func (f *Factory) runRollbackTo(ctx context.Context, rev string, opts switchOptions) error {
	o := newDeployOptions(f)
	o.Rev, o.Rollback = rev, true
	o.Yes, o.DryRun, o.Force, o.Reason = opts.Yes, opts.DryRun, opts.Force, opts.Reason
	o.VerifyTimeout, o.VerifySet = opts.VerifyTimeout, opts.verifySet
	return deployRun(ctx, o)
}

// runSwitch rolls traffic over to the off color of f's target (finishing
// an interrupted switch first if there is one).
func (f *Factory) runSwitch(ctx context.Context, opts switchOptions, action, command string) error {
	// .oopsrc, then --verify-timeout, then the target: the order rollback
	// always checked them in (a .oopsrc that does not load is said first).
	if _, err := f.Config(); err != nil {
		return err
	}
	vt, err := verifyTimeout(opts.VerifyTimeout, opts.verifySet, f.Config)
	if err != nil {
		return err
	}
	p, err := f.Runner().Preflight(ctx)
	if err != nil {
		return err
	}
	if p.NotServing != nil {
		f.warnf("%v", p.NotServing)
	}
	return f.switchTarget(ctx, p.Target, "", opts, vt, action, command)
}

// switchTarget moves t's traffic to color to ("" : the off color) through
// the Switch workflow and prints what is live afterwards.
func (f *Factory) switchTarget(ctx context.Context, t target.Target, to release.Color, opts switchOptions, vt time.Duration, action, command string) error {
	req := f.switchRequest(t, to, opts, vt, action, command)
	// Printed under the lock, as soon as the switch is made: a lock found
	// lost afterwards is said after it.
	req.Switched = func(res *target.SwitchResult) { f.printSwitched(t, opts, res) }
	_, err := f.Runner().Switch(ctx, t, req)
	return err
}

// printSwitched says what a switch made live (or would, on a dry run).
func (f *Factory) printSwitched(t target.Target, opts switchOptions, res *target.SwitchResult) {
	if res.Plan == nil {
		fmt.Fprintf(f.IO.Out, "%s is already live on %s: nothing to do\n", res.Before.Live.Color, t)
		return
	}
	if opts.DryRun {
		fmt.Fprint(f.IO.Out, res.Plan.String())
		f.IO.Progressf("dry run: nothing changed")
		return
	}
	now := res.Before.Color(res.Plan.To)
	if w := res.Plan.Weight; w > 0 && w < 100 {
		fmt.Fprintf(f.IO.Out, "%d%% of traffic on %s goes to %s now (%s, commit %s); %s keeps %d%%\n",
			w, t, res.Plan.To, now.Where(), shortCommit(now), res.Plan.From, 100-w)
		return
	}
	fmt.Fprintf(f.IO.Out, "%s is live now on %s (%s, commit %s; was %s)\n",
		res.Plan.To, t, now.Where(), shortCommit(now), res.Plan.From)
}

// switchRequest is the Switch workflow's request for these flags; the
// operator confirms the plan on stderr.
func (f *Factory) switchRequest(t target.Target, to release.Color, opts switchOptions, vt time.Duration, action, command string) workflow.SwitchRequest {
	return workflow.SwitchRequest{
		To: to, Weight: opts.Weight, Force: opts.Force, DryRun: opts.DryRun, Reason: opts.Reason, Verify: vt,
		Action: action, Command: command, NoLock: opts.NoLock, NoLockOffer: opts.noLockOffer, CommitOf: opts.commitOf,
		Confirm: func(p *target.Plan) (bool, error) {
			if !opts.Yes {
				fmt.Fprint(f.IO.ErrOut, p.String())
			}
			return f.confirm(opts.Yes, fmt.Sprintf("Switch %s from %s to %s?", t, p.From, p.To))
		},
	}
}

func shortCommit(c target.ColorState) string {
	if !c.CommitKnown() {
		return target.UnknownCommit
	}
	return release.Short(c.Commit)
}
