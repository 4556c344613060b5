package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/display"
	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/workflow"
)

// DoctorOptions are what `oops doctor` runs with: flags and dependencies.
type DoctorOptions struct {
	IO     *IOStreams
	Doctor func(context.Context) []workflow.Check
	JSON   bool
	Export iostreams.Exporter // --jq, --template
}

// newDoctorCmd builds `oops doctor`; runF replaces the run in flag tests.
func newDoctorCmd(f *Factory, runF func(context.Context, *DoctorOptions) error) *cobra.Command {
	opts := &DoctorOptions{IO: f.IO, Doctor: func(ctx context.Context) []workflow.Check { return f.Runner().Doctor(ctx) }}
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Check that oops can do its job here: config, store, credentials, target, lock",
		Long: `doctor reads everything a rollback needs, changes nothing, and says what
is wrong and what to do about it. Run it before you need oops, and first
when a command fails in a way you do not understand.

It exits 0 when every check passes (warnings included), else with the exit
code of the first failed check.`,
		Example: "  oops doctor\n  oops doctor --json",
		Args:    noArgs,
	}
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	return runCmd(c, opts, runF, doctorRun)
}

func doctorRun(ctx context.Context, opts *DoctorOptions) error {
	checks := opts.Doctor(ctx)
	var first error
	for _, ch := range checks {
		if ch.Status == "fail" && first == nil {
			first = ch.Err
		}
	}
	if opts.JSON {
		if err := opts.Export.Write(opts.IO.Out, checks, time.Now); err != nil {
			return err
		}
	} else if err := printChecks(opts.IO, checks); err != nil {
		return err
	}
	if first != nil {
		// The table said it all; exit with the failure's own code.
		return fmt.Errorf("%w%w", errSilent, first)
	}
	return nil
}

// printChecks is doctor's table, and the hints of what is not ok.
func printChecks(ios *IOStreams, checks []workflow.Check) error {
	rows := make([][]string, 0, len(checks))
	for _, ch := range checks {
		rows = append(rows, []string{ch.Name, ch.Status, ch.Detail})
	}
	if err := ios.PrintStyledTable([]string{"CHECK", "STATUS", "DETAIL"}, rows, display.Style); err != nil {
		return err
	}
	for _, ch := range checks {
		if ch.Hint != "" && ch.Status != "ok" {
			fmt.Fprintf(ios.ErrOut, "%s: %s\n", ch.Name, ch.Hint)
		}
	}
	return nil
}
