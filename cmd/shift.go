package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/backend"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// newShiftCmd builds `oops shift`; runF replaces the run in flag tests
// (nil: shiftRun).
func newShiftCmd(f *Factory, runF func(context.Context, *SwitchOptions) error) *cobra.Command {
	opts := newSwitchOptions(f)
	c := &cobra.Command{
		Use:   "shift PERCENT",
		Short: "Send PERCENT of the traffic to the off color: a canary (ALB, Route 53, local proxy)",
		Long: `Send PERCENT (0-100) of the traffic to the canary color with one weighted
forward action per listener, and the rest to the color that had all of it.
The canary color is the off color when all traffic is on one color, and
stays the same while a canary is in progress, whichever color has more.

  oops shift 10     10% to the off color (the health gate runs first)
  oops shift 50     raise the canary to half
  oops promote      the rest: all traffic to the canary color
  oops rollback     all traffic back to where the canary started
  oops shift 0      the same as that rollback

oops status shows the weights. An ALB, Route 53 and the local proxy split
traffic; a Classic ELB switches all at once (oops rollback).

Like every switch it probes the color it sends traffic to (unless
--force), asks on a terminal (unless --yes), prints every call with
--dry-run, watches the color for --verify-timeout and goes back to the
previous split if it fails, and is recorded in history.`,
		Example: `  oops shift 10 -m "canary of 4f2a1c9"
  oops shift 25 --yes
  oops shift 50 --dry-run
  oops shift 0 --yes          # end the canary: all back`,
		Args: exactArgs(1, "one PERCENT from 0 to 100"),
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := parsePercent(args[0])
			opts.Percent = p
			return err
		},
	}
	c.ValidArgsFunction = firstArg(completeWords("10", "25", "50", "100", "0"))
	return switchCmd(c, opts, runF, shiftRun)
}

func parsePercent(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || p < 0 || p > 100 {
		return 0, withHint(usageErrorf("PERCENT must be a whole number from 0 to 100, got %q", s), "e.g. oops shift 10")
	}
	return p, nil
}

// shiftRun sends opts.Percent of the traffic to the canary color.
func shiftRun(ctx context.Context, opts *SwitchOptions) error {
	vt, err := opts.verify()
	if err != nil {
		return err
	}
	t, err := opts.Target(ctx, backend.TargetOptions{Weighted: "oops shift"})
	if err != nil {
		return err
	}
	st, err := t.State(ctx)
	if err != nil {
		return err
	}
	step := workflow.PlanShift(st, opts.Percent)
	if step.Nothing {
		fmt.Fprintf(opts.IO.Out, "%s already sends %d%% to %s: nothing to do\n", t, opts.Percent, step.To)
		return nil
	}
	return switchTo(ctx, opts, t, step.To, step.Weight, vt, workflow.SwitchRequest{Action: release.ActionShift, Command: "oops shift"})
}

// checkCanary validates deploy --canary PERCENT.
func checkCanary(percent int, noSwitch bool) error {
	switch {
	case percent < 0 || percent > 100:
		return usageErrorf("--canary must be a percent from 1 to 100, got %d", percent)
	case percent > 0 && noSwitch:
		return usageErrorf("--canary sends traffic to the release; it cannot go with --no-switch")
	}
	return nil
}
