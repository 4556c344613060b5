package cmd

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/internal/display"
	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

// HistoryOptions are what `oops history` runs with: flags and dependencies.
type HistoryOptions struct {
	IO          *IOStreams
	Now         func() time.Time
	Config      func() (*config.Config, error)
	Store       func(context.Context) (store.Store, error)
	FlushSpool  func(context.Context, store.Store)
	WarnCorrupt func(ce *store.CorruptError, instead string)
	Warnf       func(format string, args ...any)

	Limit  int
	Before string
	JSON   bool
	Export iostreams.Exporter // --jq, --template
}

// newHistoryCmd builds `oops history`; runF replaces the run in flag tests (nil: historyRun).
func newHistoryCmd(f *Factory, runF func(context.Context, *HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{
		IO: f.IO, Now: f.Now, Config: f.Config, Store: f.Backends().Store,
		FlushSpool:  func(ctx context.Context, st store.Store) { f.Runner().FlushSpool(ctx, st) },
		WarnCorrupt: func(ce *store.CorruptError, instead string) { f.Runner().WarnCorrupt(ce, instead) },
		Warnf:       f.IO.Warnf,
	}
	c := &cobra.Command{
		Use:   "history",
		Short: "Show who changed what, when and why, newest first",
		Long: `history lists the application's events, newest first: every publish, deploy,
switch, rollback, repair and lock release, including refused and failed
attempts, with who ran it (the AWS caller, else the git user, plus OS user
and host), the reason given with -m, the result and how long it took.`,
		Example: `  oops history
  oops history --limit 100 --json
  oops history --before <ID>      # the page after the event with that id`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Limit < 0 {
				return withHint(usageErrorf("--limit must be 0 (everything) or more, got %d", opts.Limit), "see: oops history --help")
			}
			return nil
		},
	}
	c.Flags().IntVarP(&opts.Limit, "limit", "n", 20, "show at most `N` events (0: all)")
	c.Flags().StringVar(&opts.Before, "before", "", "show events older than the one with this `id`")
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	return runCmd(c, opts, runF, historyRun)
}

func historyRun(ctx context.Context, opts *HistoryOptions) error {
	c, err := opts.Config()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx)
	if err != nil {
		return err
	}
	opts.FlushSpool(ctx, st)
	events, err := store.ListEvents(ctx, st, c.ApplicationName, store.EventQuery{
		Limit: opts.Limit, Before: opts.Before,
		OnCorrupt: func(ce *store.CorruptError) { opts.WarnCorrupt(ce, "left out") },
	})
	if err != nil {
		return err
	}
	if opts.JSON {
		if events == nil {
			events = []release.Event{}
		}
		return opts.Export.Write(opts.IO.Out, events, opts.Now)
	}
	if len(events) == 0 {
		opts.Warnf("no history yet for %s in %s", c.ApplicationName, st)
		return nil
	}
	now := opts.Now()
	header := []string{"TIME", "ACTION", "RESULT", "FROM", "TO", "WHO", "TOOK", "REASON"}
	if !opts.IO.OutTTY {
		header = append(header, "ID") // for --before; piped output has no header
	}
	rows := make([][]string, 0, len(events))
	for _, ev := range events {
		when := ev.Time.Local().Format("2006-01-02 15:04:05")
		result := ev.Result
		if opts.IO.OutTTY {
			when += " (" + iostreams.RelTime(now, ev.Time) + ")"
			if b := display.Bake(ev.Analysis); b != "" {
				result += " (" + b + ")"
			}
			if ev.Error != "" {
				result += ": " + display.Abbreviate(ev.Error, 48)
			}
		}
		row := []string{
			when, ev.Action, result, display.Side(ev.From), display.Side(ev.To), ev.Who,
			(time.Duration(ev.DurationMS) * time.Millisecond).String(), display.Cell(ev.Reason),
		}
		if !opts.IO.OutTTY {
			row = append(row, ev.ID)
		}
		rows = append(rows, row)
	}
	return opts.IO.PrintStyledTable(header, rows, display.Style)
}
