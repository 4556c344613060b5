package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/display"
	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// StatusOptions are what `oops status` runs with: flags and dependencies.
type StatusOptions struct {
	IO     *IOStreams
	Target func(context.Context) (target.Target, error)
	// Approvals are the deploys awaiting approval or approved and not
	// switched yet (none without require-approval).
	Approvals func(context.Context) ([]workflow.Approval, error)

	JSON   bool
	Export iostreams.Exporter // --jq, --template
}

// newStatusCmd builds `oops status`; runF replaces the run in flag tests (nil: statusRun).
func newStatusCmd(f *Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IO, Target: f.Backends().MainTarget, Approvals: func(ctx context.Context) ([]workflow.Approval, error) {
		return f.Runner().PendingApprovals(ctx)
	}}
	c := &cobra.Command{
		Use:   "status",
		Short: "Show which color is live, which commit each runs, and their health",
		Long: `Show the live and the off color with their ports, the commit each runs
("unknown" until oops deploys it), the health check, each instance's health
as the load balancer sees it, and the listeners.

Everything is read from the target itself (for a Classic ELB: its listeners
and tags); nothing is changed. A target left half-switched (an interrupted
switch, missing or split listeners) is reported with what to run, and
status exits 8. With require-approval, "approval" lines say which deploys
await approval (and how to approve them) or were approved and are still
to switch.

On a terminal the output is a table; otherwise tab-separated lines (color,
role, port, commit, health) for grep and cut. --json keeps the original
tool's shape {"active":{"color","port"},"off":{"color","port"}} and adds
fields beside it.`,
		Example: `  oops status
  oops status --json | jq -r .active.color
  oops status | awk '$2 == "live" {print $1}'`,
		Args: noArgs,
	}
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	return runCmd(c, opts, runF, statusRun)
}

// statusJSON is the state plus, when there is one, the problem found.
type statusJSON struct {
	*target.State
	Problem   string              `json:"problem,omitempty"`
	Approvals []workflow.Approval `json:"approvals,omitempty"`
}

// statusRun prints the target's state; a state read with a problem (a
// half-switched target) is printed, then the problem returned.
func statusRun(ctx context.Context, opts *StatusOptions) error {
	t, err := opts.Target(ctx)
	if err != nil {
		return err
	}
	st, err := readStatus(ctx, t)
	if st == nil {
		return err
	}
	approvals, aerr := opts.Approvals(ctx)
	if aerr != nil {
		// The target said what matters: the store may be down.
		opts.IO.Warnf("cannot tell what awaits approval: %v", aerr)
	}
	if opts.JSON {
		out := statusJSON{State: st, Approvals: approvals}
		if err != nil {
			out.Problem = err.Error()
		}
		if werr := opts.Export.Write(opts.IO.Out, out, time.Now); werr != nil {
			return werr
		}
		return err
	}
	if opts.IO.OutTTY {
		fmt.Fprintln(opts.IO.Out, t.String())
	}
	header, rows := display.StatusTable(st)
	if perr := opts.IO.PrintStyledTable(header, rows, display.Style); perr != nil {
		return perr
	}
	for _, kv := range append(display.StatusNotes(st), display.ApprovalNotes(approvals)...) {
		if opts.IO.OutTTY {
			fmt.Fprintf(opts.IO.Out, "%s: %s\n", kv[0], kv[1])
		} else {
			fmt.Fprintf(opts.IO.Out, "%s\t%s\n", strings.ReplaceAll(kv[0], " ", "-"), kv[1])
		}
	}
	return err
}

// readStatus reads the state with the target's fuller description when it
// has one (instance health, listeners, traffic).
func readStatus(ctx context.Context, t target.Target) (*target.State, error) {
	if d, ok := t.(target.Describer); ok {
		return d.Describe(ctx)
	}
	return t.State(ctx)
}
