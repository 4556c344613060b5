package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// DownscaleOptions are what `oops downscale` runs with.
type DownscaleOptions struct {
	IO      *IOStreams
	Runner  func() *workflow.Runner
	Target  func(context.Context) (target.Target, error)
	Confirm func(yes bool, question string) (bool, error)

	Yes, DryRun, Force bool
	Reason             string
}

// newDownscaleCmd builds `oops downscale`; runF replaces the run in flag
// tests (nil: downscaleRun).
func newDownscaleCmd(f *Factory, runF func(context.Context, *DownscaleOptions) error) *cobra.Command {
	opts := &DownscaleOptions{IO: f.IO, Runner: f.Runner, Target: f.Backends().MainTarget, Confirm: f.confirm}
	c := &cobra.Command{
		Use:   "downscale",
		Short: "Stand the off color by: scale its auto-scaling group to min-off-capacity",
		Long: `After a switch the old color stays at full size (warm), so that a rollback
is one ModifyListener per listener. Once keep-warm (default 1h) has passed
since the live color went live, oops downscale scales the off color's
auto-scaling group to min-off-capacity (default 0), recorded in history.
Inside keep-warm it needs --force.

A rollback onto a cold color scales it up first and waits until its
instances are healthy (oops status says what a rollback would cost).`,
		Example: `  oops downscale --dry-run
  oops downscale --yes -m 'release 1.4 holds'
  oops downscale --force --yes`,
		Args: noArgs,
	}
	fl := c.Flags()
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the call a downscale would make and change nothing")
	fl.BoolVar(&opts.Force, "force", false, "downscale inside keep-warm")
	fl.StringVarP(&opts.Reason, "message", "m", "", "why, recorded in history")
	return runCmd(c, opts, runF, downscaleRun)
}

func downscaleRun(ctx context.Context, opts *DownscaleOptions) error {
	t, err := opts.Target(ctx)
	if err != nil {
		return err
	}
	ios := opts.IO
	out, err := opts.Runner().Downscale(ctx, t, workflow.DownscaleRequest{Force: opts.Force, DryRun: opts.DryRun, Reason: opts.Reason,
		Confirm: func(p *target.Plan) (bool, error) {
			if !opts.Yes {
				fmt.Fprint(ios.ErrOut, downscaleText(p))
			}
			return opts.Confirm(opts.Yes, fmt.Sprintf("Stand %s by on %s?", p.From.Other(), t))
		}})
	if err != nil {
		return err
	}
	switch {
	case out.Plan == nil:
		fmt.Fprintf(ios.Out, "nothing to do: %s (%s) is at %d already\n", out.Color, out.Group, out.To)
	case opts.DryRun:
		fmt.Fprint(ios.Out, downscaleText(out.Plan))
		ios.Progressf("dry run: nothing changed")
	default:
		fmt.Fprintf(ios.Out, "%s stands by: %s scaled from %d to %d; a rollback scales it up first\n", out.Color, out.Group, out.From, out.To)
	}
	return nil
}

func downscaleText(p *target.Plan) string {
	text := fmt.Sprintf("downscale %s:\n", p.From.Other())
	for i, s := range p.Steps {
		text += fmt.Sprintf("  %d. %s\n", i+1, s)
	}
	return text
}
