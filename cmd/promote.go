package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
)

func newPromoteCmd(f *Factory) *cobra.Command {
	var opts switchOptions
	c := &cobra.Command{
		Use:   "promote",
		Short: "Finish a canary: send all traffic to the canary color (ALB)",
		Long: `Send all traffic to the color a canary (oops shift, oops deploy --canary)
sends part of it to, finishing the switch. The canary color is probed first
(unless --force) and watched for --verify-timeout afterwards; if it fails,
traffic goes back to the canary's split.

With no canary in progress promote changes nothing and exits 1, so a
pipeline does not mistake a canary someone rolled back for a promoted one.`,
		Example: `  oops promote
  oops promote --yes -m "canary clean for 30 min"
  oops promote --dry-run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.verifySet = cmd.Flags().Changed("verify-timeout")
			return f.runPromote(cmd.Context(), opts)
		},
	}
	addSwitchFlags(c, &opts)
	return c
}

func (f *Factory) runPromote(ctx context.Context, opts switchOptions) error {
	t, err := f.TargetFor(ctx, TargetOptions{Weighted: "oops promote"})
	if err != nil {
		return err
	}
	vt, err := verifyTimeout(opts.VerifyTimeout, opts.verifySet, f.Config)
	if err != nil {
		return err
	}
	st, err := t.State(ctx)
	if err != nil {
		return err
	}
	if st.Base == "" {
		return withHint(fmt.Errorf("promote: no canary in progress on %s: all traffic is on %s (commit %s)", t, st.Live.Color, shortCommit(st.Live)),
			"start one with oops shift PERCENT or oops deploy REV --canary PERCENT")
	}
	_, to := canary(st)
	return f.switchTarget(ctx, t, to, opts, vt, release.ActionPromote, "oops promote")
}
