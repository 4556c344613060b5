package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
)

func newOffCmd(f *Factory) *cobra.Command {
	var opts switchOptions
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
			opts.verifySet = cmd.Flags().Changed("verify-timeout")
			return f.runOff(cmd.Context(), opts)
		},
	}
	addSwitchFlags(c, &opts)
	return c
}

func (f *Factory) runOff(ctx context.Context, opts switchOptions) error {
	vt, err := verifyTimeout(opts.VerifyTimeout, opts.verifySet, f.Config)
	if err != nil {
		return err
	}
	main, err := f.Target(ctx)
	if err != nil {
		return err
	}
	st, err := main.State(ctx)
	if err != nil {
		return err
	}
	pv, err := f.TargetFor(ctx, TargetOptions{PreviewOf: st})
	if err != nil {
		return err
	}
	opts.commitOf = func(c release.Color) string { return st.Color(c).Commit }
	return f.switchTarget(ctx, pv, st.Off.Color, opts, vt, release.ActionPreview, "oops off")
}
