package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// newRollbackCmd builds `oops rollback`; runF replaces the run in flag
// tests (nil: rollbackRun).
func newRollbackCmd(f *Factory, runF func(context.Context, *SwitchOptions) error) *cobra.Command {
	opts := newSwitchOptions(f)
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
		RunE: func(*cobra.Command, []string) error {
			if opts.Timeout < 0 {
				return usageErrorf("--timeout must be 0 (scale-timeout from .oopsrc) or more, got %s", opts.Timeout)
			}
			if opts.To != "" && opts.NoLock {
				return withHint(usageErrorf("--no-lock cannot be combined with --to: the release to go to is read from the store"),
					"roll back to the off color: oops rollback --no-lock")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&opts.NoLock, "no-lock", false, "only when the store cannot be reached: switch without the lock, keep the event on this machine until it can")
	c.Flags().DurationVar(&opts.Timeout, "timeout", 0, "how long a cold color (auto-scaling groups) may take to scale up and become healthy before nothing is switched (default scale-timeout from .oopsrc, else 10m); with --to, how long the install may take")
	c.Flags().StringVar(&opts.To, "to", "", "roll back to this earlier release (`REV`): switch to it if the off color runs it, else deploy it there first")
	_ = c.RegisterFlagCompletionFunc("to", completeRevs(f))
	return switchCmd(c, opts, runF, rollbackRun)
}

// rollbackRun rolls traffic over to the off color (finishing an
// interrupted switch first if there is one), or with --to to a chosen
// release.
func rollbackRun(ctx context.Context, opts *SwitchOptions) error {
	if opts.To != "" {
		return rollbackTo(ctx, opts)
	}
	vt, err := opts.verify()
	if err != nil {
		return err
	}
	ctx = target.WithScaleTimeout(ctx, opts.Timeout)
	p, err := opts.Runner().Preflight(ctx)
	if err != nil {
		return err
	}
	if p.NotServing != nil {
		opts.IO.Warnf("%v", p.NotServing)
	}
	return switchTo(ctx, opts, p.Target, "", 0, vt, workflow.SwitchRequest{
		Action: release.ActionRollback, Command: "oops rollback", NoLockOffer: "oops rollback --no-lock"})
}

// rollbackTo rolls back to a chosen release: a plain switch when the off
// color already runs it (warm), else the deploy path (install on the off
// color, wait until healthy, switch), recorded as a rollback so the
// release it leaves is marked BAD.
func rollbackTo(ctx context.Context, opts *SwitchOptions) error {
	if _, err := opts.Config(); err != nil {
		return err // said before a bad --verify-timeout, as for every rollback
	}
	o := opts.deploy(opts.To)
	o.Rollback = true
	return deployRun(ctx, o)
}
