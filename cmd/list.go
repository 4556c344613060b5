package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/display"
	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/workflow"
)

// ListOptions are what `oops list` runs with: flags and dependencies.
type ListOptions struct {
	IO         *IOStreams
	Now        func() time.Time
	Index      func(context.Context) (*store.Index, error)
	FlushSpool func(context.Context, store.Store) int
	EnrichBare func([]release.Release)
	Status     func(context.Context, *store.Listing) (map[string]workflow.ReleaseState, error)

	Limit  int
	JSON   bool
	Export iostreams.Exporter // --jq, --template
}

// newListCmd builds `oops list`; runF replaces the run in flag tests (nil: listRun).
func newListCmd(f *Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{
		IO: f.IO, Now: f.Now, Index: f.Backends().Index,
		FlushSpool: func(ctx context.Context, st store.Store) int { return f.Runner().FlushSpool(ctx, st) },
		EnrichBare: func(rels []release.Release) { f.Runner().EnrichBare(rels) }, Status: func(ctx context.Context, l *store.Listing) (map[string]workflow.ReleaseState, error) {
			return f.Runner().ListStatus(ctx, l)
		},
	}
	c := &cobra.Command{
		Use:   "list",
		Short: "List releases, newest first",
		Long: `List the published releases of the application, newest first: commit,
when it was published, size, author and subject.

Artifacts uploaded by other tools in the original layout
(<app>/<app>-<full-sha>.zip) are listed too; their author and subject come
from the local git repository when it has the commit.

Releases published at the same instant are ordered by commit time, then
a descendant before its ancestors (when the local git repository has
them), then by SHA.

On a terminal the output is a table; otherwise one tab-separated line per
release, for grep and cut, always with the same eight columns in this
order, whatever the target and the marks ("-" when empty):

  1 COMMIT     7-hex abbreviation
  2 PUBLISHED  RFC 3339, UTC
  3 SIZE       bytes
  4 AUTHOR
  5 SUBJECT
  6 STATUS     LIVE (takes the traffic), OFF (warm) (runs on the off color:
               a rollback to it is instant), BAD: <reason> (was rolled back
               from: deploying it needs --force), or -; with
               require-approval, then ", AWAITING APPROVAL (deployed by
               <who>)" or ", APPROVED by <who>"
  7 DEPLOYED   when it last went live, and who did it
  8 FLAGS      dirty (published with --allow-dirty), bare (no oops
               metadata: unverified on deploy), comma-separated

On a terminal, STATUS comes first and DEPLOYED last when there is any, and
FLAGS only when a release has one. --json prints every field.`,
		Example: `  oops list
  oops list --limit 5
  oops list --json | jq -r '.[0].commit'
  oops list | cut -f1 | head -3`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Limit < 0 {
				return usageErrorf("--limit must be 0 (all) or more, got %d", opts.Limit)
			}
			return nil
		},
	}
	c.Flags().IntVarP(&opts.Limit, "limit", "n", 0, "show at most `N` releases (0: all)")
	addJSONFlags(c, &opts.JSON, &opts.Export, "print a JSON array of releases")
	return runCmd(c, opts, runF, listRun)
}

// listItem is one release as `oops list --json` prints it.
type listItem struct {
	release.Release
	// Status (LIVE, OFF, BAD), color, BAD reason, last deployed: see
	// ReleaseStatus in workflow/status.go.
	workflow.ReleaseState
}

func listRun(ctx context.Context, opts *ListOptions) error {
	idx, err := opts.Index(ctx)
	if err != nil {
		return err
	}
	// The marks come in the same wave of requests as the releases.
	l, err := idx.ListWithMarks(ctx, opts.Limit)
	if err != nil {
		return err
	}
	rels := l.Releases
	if opts.FlushSpool(ctx, idx.Store()) > 0 { // the store is reached: history gets what waited
		l.Marks, l.MarksErr = nil, nil // which may have changed them: read again
	}
	opts.EnrichBare(rels)
	status, err := opts.Status(ctx, l)
	if err != nil {
		return err
	}
	if opts.JSON {
		items := make([]listItem, len(rels))
		for i, r := range rels {
			items[i] = listItem{Release: r, ReleaseState: status[r.Commit]}
		}
		return opts.Export.Write(opts.IO.Out, items, opts.Now)
	}
	if len(rels) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no releases in %s yet; publish one with: oops publish FILE\n", idx.Store())
		return nil
	}
	if !opts.IO.OutTTY {
		return opts.IO.PrintTable(nil, display.PipedListRows(rels, status))
	}
	header := []string{"COMMIT", "PUBLISHED", "SIZE", "AUTHOR", "SUBJECT"}
	if status != nil {
		header = append(append([]string{"STATUS"}, header...), "DEPLOYED")
	}
	withFlags := false
	for _, r := range rels {
		withFlags = withFlags || display.FlagsCell(r) != "-"
	}
	if withFlags {
		header = append(header, "FLAGS")
	}
	now := opts.Now()
	rows := make([][]string, 0, len(rels))
	for _, r := range rels {
		pub := iostreams.RelTime(now, r.Published) + " (" + r.Published.Local().Format("2006-01-02 15:04") + ")"
		row := []string{r.Short(), pub, release.HumanSize(r.Size), display.Cell(r.Author), display.Cell(r.Subject)}
		if status != nil {
			rs := status[r.Commit]
			row = append(append([]string{display.StatusCell(rs)}, row...), display.DeployedCell(rs, now, true))
		}
		if withFlags {
			row = append(row, display.FlagsCell(r))
		}
		rows = append(rows, row)
	}
	return opts.IO.PrintStyledTable(header, rows, display.Style)
}
