package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// ApproveOptions are what `oops approve REV` runs with: flags and dependencies.
type ApproveOptions struct {
	IO      *IOStreams
	Runner  func() *workflow.Runner
	Confirm func(yes bool, question string) (bool, error)

	Rev         string
	Message     string
	Yes, DryRun bool
}

// newApproveCmd builds `oops approve`; runF replaces the run in flag tests (nil: approveRun).
func newApproveCmd(f *Factory, runF func(context.Context, *ApproveOptions) error) *cobra.Command {
	opts := &ApproveOptions{IO: f.IO, Runner: f.Runner, Confirm: f.confirm}
	c := &cobra.Command{
		Use:   "approve REV",
		Short: "Approve a deploy that awaits a second person (require-approval)",
		Long: `With "require-approval": true in .oopsrc, oops deploy installs the release
on the off color and stops before the switch (exit 14, awaiting approval).
oops approve REV records the approval, under the lock and in history; then
oops deploy REV switches at once.

The deployer cannot approve their own deploy, and when .oopsrc lists
"approvers", only they can approve. Identities are as history shows them:
the AWS caller ARN when the application is on AWS, else the git user.name.
oops rollback never needs an approval.

oops status and oops list show what awaits approval.`,
		Example: `  oops approve 4f2a1c9 -m "reviewed the migration"
  oops approve v1.4.2 --yes
  oops approve 4f2a1c9 --dry-run    # may I? nothing is recorded`,
		Args: exactArgs(1, "one revision (the commit a deploy awaits approval for)"),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Rev = args[0]
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&opts.Message, "message", "m", "", "why, recorded in history and with the approval")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "check that you may approve it and change nothing")
	c.ValidArgsFunction = firstArg(completeRevs(f))
	return runCmd(c, opts, runF, approveRun)
}

func approveRun(ctx context.Context, opts *ApproveOptions) error {
	out, err := opts.Runner().Approve(ctx, workflow.ApproveRequest{
		Rev: opts.Rev, Message: opts.Message, DryRun: opts.DryRun,
		Confirm: func(q string) (bool, error) { return opts.Confirm(opts.Yes, q) },
	})
	if err != nil {
		return err
	}
	a, w := out.Approval, opts.IO.Out
	short := release.Short(a.Commit)
	switch {
	case out.Already:
		fmt.Fprintf(w, "%s was approved already by %s; oops deploy %s switches to it\n", short, a.ApprovedBy, short)
	case opts.DryRun:
		fmt.Fprintf(w, "you may approve %s (on %s, deployed by %s)\n", short, a.Color, a.RequestedBy)
		fmt.Fprintln(opts.IO.ErrOut, "dry run: nothing changed")
	default:
		fmt.Fprintf(w, "%s is approved by %s; oops deploy %s switches traffic to it\n", short, a.ApprovedBy, short)
	}
	return nil
}
