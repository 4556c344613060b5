package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/backend"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// newPromoteCmd builds `oops promote`; runF replaces the run in flag
// tests (nil: promoteRun).
func newPromoteCmd(f *Factory, runF func(context.Context, *SwitchOptions) error) *cobra.Command {
	opts := newSwitchOptions(f)
	c := &cobra.Command{
		Use:   "promote",
		Short: "Finish a canary (all traffic to the canary color), or switch to an approved deploy",
		Long: `Send all traffic to the color a canary (oops shift, oops deploy --canary)
sends part of it to, finishing the switch. The canary color is probed first
(unless --force) and watched for --verify-timeout afterwards; if it fails,
traffic goes back to the canary's split.

With require-approval and no canary in progress, promote switches to the
approved release waiting on the off color, as oops deploy REV would.

Otherwise, with no canary in progress promote changes nothing and exits 1,
so a pipeline does not mistake a canary someone rolled back for a promoted
one.`,
		Example: `  oops promote
  oops promote --yes -m "canary clean for 30 min"
  oops promote --dry-run`,
		Args: noArgs,
	}
	return switchCmd(c, opts, runF, promoteRun)
}

// promoteRun sends all traffic to the canary color.
func promoteRun(ctx context.Context, opts *SwitchOptions) error {
	vt, err := opts.verify()
	if err != nil {
		return err
	}
	if c, _ := opts.Config(); c != nil && c.RequireApproval {
		if done, err := promoteApproved(ctx, opts); done || err != nil {
			return err
		}
	}
	t, err := opts.Target(ctx, backend.TargetOptions{Weighted: "oops promote"})
	if err != nil {
		return err
	}
	st, err := t.State(ctx)
	if err != nil {
		return err
	}
	to, err := workflow.PromoteTo(t, st)
	if err != nil {
		return err
	}
	return switchTo(ctx, opts, t, to, 0, vt, workflow.SwitchRequest{Action: release.ActionPromote, Command: "oops promote"})
}

// promoteApproved switches to an approved deploy waiting on the off color
// (require-approval), on any target, the way oops deploy REV would; done
// is false when there is none (then promote finishes a canary).
func promoteApproved(ctx context.Context, opts *SwitchOptions) (done bool, err error) {
	t, err := opts.Target(ctx, backend.TargetOptions{})
	if err != nil {
		return false, err
	}
	st, err := t.State(ctx)
	if err != nil || st.Base != "" {
		return false, err // a canary in progress: promote finishes it
	}
	a, err := opts.Runner().ApprovedOff(ctx, st)
	if err != nil || a == nil {
		return false, err
	}
	return true, deployRun(ctx, opts.deploy(a.Commit))
}
