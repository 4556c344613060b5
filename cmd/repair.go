package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// RepairOptions are what `oops repair` runs with: flags and dependencies.
type RepairOptions struct {
	IO      *IOStreams
	Runner  func() *workflow.Runner
	Target  func(context.Context) (target.Target, error)
	Confirm func(yes bool, question string) (bool, error)

	Yes, DryRun bool
	To          string
	Reason      string
}

// newRepairCmd builds `oops repair`; runF replaces the run in flag tests
// (nil: repairRun).
func newRepairCmd(f *Factory, runF func(context.Context, *RepairOptions) error) *cobra.Command {
	opts := &RepairOptions{IO: f.IO, Runner: f.Runner, Target: f.Backends().MainTarget, Confirm: f.confirm}
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
			if opts.To != "" {
				if _, err := release.ParseColor(opts.To); err != nil {
					return usageErrorf("--to: %v", err)
				}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the calls a repair would make and change nothing")
	fl.StringVar(&opts.To, "to", "", "leave all traffic on this `color` (blue or green) when the target does not say")
	fl.StringVarP(&opts.Reason, "message", "m", "", "why, recorded in history")
	_ = c.RegisterFlagCompletionFunc("to", completeWords("blue", "green"))
	return runCmd(c, opts, runF, repairRun)
}

// repairRun runs the Repair workflow on the target and says what it did,
// under the lock, as soon as it is done: a lock found lost afterwards is
// said after.
func repairRun(ctx context.Context, opts *RepairOptions) error {
	var to release.Color
	if opts.To != "" {
		to, _ = release.ParseColor(opts.To) // checked with the flags
	}
	t, err := opts.Target(ctx)
	if err != nil {
		return err
	}
	ios := opts.IO
	_, err = opts.Runner().Repair(ctx, t, workflow.RepairRequest{To: to, DryRun: opts.DryRun, Reason: opts.Reason,
		Confirm: func(p *target.Plan) (bool, error) {
			if p == nil {
				return opts.Confirm(opts.Yes, fmt.Sprintf("Repair %s?", t))
			}
			if !opts.Yes {
				fmt.Fprint(ios.ErrOut, repairText(t, p))
			}
			return opts.Confirm(opts.Yes, fmt.Sprintf("Repair %s, leaving %s live?", t, p.To))
		},
		Repaired: func(out *workflow.RepairOutcome) {
			switch {
			case out.Plan != nil && opts.DryRun:
				fmt.Fprint(ios.Out, repairText(t, out.Plan))
				ios.Progressf("dry run: nothing changed")
			case out.Plan != nil:
				fmt.Fprintf(ios.Out, "%s is live now on %s (repaired)\n", out.Plan.To, t)
			case out.Live != "":
				fmt.Fprintf(ios.Out, "nothing to repair: %s is live on %s\n", out.Live, t)
			case out.Message != "":
				fmt.Fprintln(ios.Out, out.Message)
			default:
				fmt.Fprintln(ios.Out, "nothing to repair on "+t.String())
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
