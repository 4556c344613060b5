package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
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
	if to != "" {
		// --to is for a target that cannot say which color is right; on a
		// consistent one it would be a switch, which is rollback's job.
		if st, err := t.State(ctx); err == nil && st.Live.Color != to {
			return withHint(usageErrorf("%s is consistent, with %s live: nothing to repair", t, st.Live.Color),
				fmt.Sprintf("to send traffic to %s, run oops rollback", to))
		}
	}
	rp, ok := t.(target.RepairPlanner)
	if !ok {
		if opts.DryRun || to != "" {
			return usageErrorf("%s cannot preview a repair or be told a color: run oops repair without --dry-run and --to", t)
		}
		return f.mutate(ctx, mutateOptions{Action: release.ActionRepair, Command: "oops repair", Reason: opts.Reason}, func(ctx context.Context, ev *release.Event) error {
			ev.Target = t.String()
			if ok, err := f.confirm(opts.Yes, fmt.Sprintf("Repair %s?", t)); err != nil || !ok {
				if err == nil {
					err = target.ErrAborted
				}
				return err
			}
			msg, err := t.Repair(ctx)
			if err != nil {
				return err
			}
			if msg == "" {
				msg = "nothing to repair on " + t.String()
			}
			fmt.Fprintln(f.IO.Out, msg)
			return nil
		})
	}
	return f.mutate(ctx, mutateOptions{Action: release.ActionRepair, Command: "oops repair", Reason: opts.Reason, DryRun: opts.DryRun}, func(ctx context.Context, ev *release.Event) error {
		ev.Target = t.String()
		p, err := rp.PlanRepair(ctx, to)
		if err != nil {
			return err
		}
		if p == nil {
			st, err := t.State(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IO.Out, "nothing to repair: %s is live on %s\n", st.Live.Color, t)
			return nil
		}
		ev.From, ev.To = release.Side{Color: p.From}, release.Side{Color: p.To}
		text := fmt.Sprintf("repair %s: all traffic to %s:\n", t, p.To)
		for i, s := range p.Steps {
			text += fmt.Sprintf("  %d. %s\n", i+1, s)
		}
		if opts.DryRun {
			fmt.Fprint(f.IO.Out, text)
			f.IO.Progressf("dry run: nothing changed")
			return nil
		}
		if !opts.Yes {
			fmt.Fprint(f.IO.ErrOut, text)
		}
		ok, err := f.confirm(opts.Yes, fmt.Sprintf("Repair %s, leaving %s live?", t, p.To))
		if err != nil {
			return err
		}
		if !ok {
			return target.ErrAborted
		}
		if err := t.Apply(ctx, p); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.Out, "%s is live now on %s (repaired)\n", p.To, t)
		return nil
	})
}
