package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

type repairOptions struct {
	Yes, DryRun bool
	To          string
	Reason      string
}

func newRepairCmd(f *Factory) *cobra.Command {
	var opts repairOptions
	c := &cobra.Command{
		Use:   "repair",
		Short: "Finish or undo an interrupted switch, leaving all traffic on one color",
		Long: `Bring a half-switched target back to a consistent state, all traffic on
one color, with every listener, certificate and policy in place.

An interrupted switch whose listeners are intact is undone (traffic never
moved); one that left listeners missing is finished, toward the color the
target recorded (for a Classic ELB: the color its health check, or the tag
oops:switch, points at). When nothing on the target says which color is
right (listeners split by hand), pass --to.

oops status says when a repair is needed. --dry-run prints the calls and
changes nothing; on a terminal oops asks first unless --yes.`,
		Example: `  oops repair
  oops repair --dry-run
  oops repair --yes --to blue`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runRepair(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the calls a repair would make and change nothing")
	fl.StringVar(&opts.To, "to", "", "leave all traffic on this `color` (blue or green) when the target does not say")
	fl.StringVarP(&opts.Reason, "message", "m", "", "why, recorded in history")
	return c
}

func (f *Factory) runRepair(ctx context.Context, opts repairOptions) error {
	var to release.Color
	if opts.To != "" {
		c, err := release.ParseColor(opts.To)
		if err != nil {
			return usageErrorf("--to: %v", err)
		}
		to = c
	}
	t, err := f.Target(ctx)
	if err != nil {
		return err
	}
	return f.repair(ctx, t, to, opts)
}

// repair runs the Repair workflow on t and says what it did, under the
// lock, as soon as it is done: a lock found lost afterwards is said after.
func (f *Factory) repair(ctx context.Context, t target.Target, to release.Color, opts repairOptions) error {
	_, err := f.Runner().Repair(ctx, t, workflow.RepairRequest{To: to, DryRun: opts.DryRun, Reason: opts.Reason,
		Confirm: func(p *target.Plan) (bool, error) {
			if p == nil {
				return f.confirm(opts.Yes, fmt.Sprintf("Repair %s?", t))
			}
			if !opts.Yes {
				fmt.Fprint(f.IO.ErrOut, repairText(t, p))
			}
			return f.confirm(opts.Yes, fmt.Sprintf("Repair %s, leaving %s live?", t, p.To))
		},
		Repaired: func(out *workflow.RepairOutcome) {
			switch {
			case out.Plan != nil && opts.DryRun:
				fmt.Fprint(f.IO.Out, repairText(t, out.Plan))
				f.IO.Progressf("dry run: nothing changed")
			case out.Plan != nil:
				fmt.Fprintf(f.IO.Out, "%s is live now on %s (repaired)\n", out.Plan.To, t)
			case out.Live != "":
				fmt.Fprintf(f.IO.Out, "nothing to repair: %s is live on %s\n", out.Live, t)
			case out.Message != "":
				fmt.Fprintln(f.IO.Out, out.Message)
			default:
				fmt.Fprintln(f.IO.Out, "nothing to repair on "+t.String())
			}
		},
	})
	return err
}

// repairText is a repair's plan as the operator reads it.
func repairText(t target.Target, p *target.Plan) string {
	text := fmt.Sprintf("repair %s: all traffic to %s:\n", t, p.To)
	for i, s := range p.Steps {
		text += fmt.Sprintf("  %d. %s\n", i+1, s)
	}
	return text
}
