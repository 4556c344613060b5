package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/backend"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// newOffCmd builds `oops off`; runF replaces the run in flag tests (nil:
// offRun).
func newOffCmd(f *Factory, runF func(context.Context, *SwitchOptions) error) *cobra.Command {
	opts := newSwitchOptions(f)
	c := &cobra.Command{
		Use:   "off",
		Short: "Point the preview load balancer at the off color",
		Long: `Point the preview load balancer (preview-elb-name in .oopsrc) at the off
color of the main one, so the release waiting there can be tried before it
goes live. The main load balancer is only read.

The preview is switched with the same care as a rollback: the off color is
probed first (health-check-url; --force skips it), every listener keeps its
ports, protocols, certificate and policies, the switch is crash-safe, and
the preview's instances are watched for --verify-timeout afterwards.

When the preview ELB has no blue/green tags of its own, the main ELB's
ports are used.`,
		Example: `  oops off
  oops off --dry-run
  oops off --yes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("bake") {
				return usageErrorf("oops off points the preview load balancer, which takes no live traffic: there is nothing to bake")
			}
			return nil
		},
	}
	return switchCmd(c, opts, runF, offRun)
}

// offRun points the preview load balancer at the main target's off color.
func offRun(ctx context.Context, opts *SwitchOptions) error {
	vt, err := opts.verify()
	if err != nil {
		return err
	}
	main, err := opts.Target(ctx, backend.TargetOptions{})
	if err != nil {
		return err
	}
	st, err := main.State(ctx)
	if err != nil {
		return err
	}
	pv, err := opts.Target(ctx, backend.TargetOptions{PreviewOf: st})
	if err != nil {
		return err
	}
	return switchTo(ctx, opts, pv, st.Off.Color, 0, vt, workflow.SwitchRequest{Action: release.ActionPreview, Command: "oops off",
		// The preview ELB does not record the commits: the main one does.
		CommitOf: func(c release.Color) string { return st.Color(c).Commit }})
}
