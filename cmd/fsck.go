package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/workflow"
)

// FsckOptions are what `oops fsck` runs with: flags and dependencies.
type FsckOptions struct {
	IO *IOStreams
	// Fsck checks (and with repair, repairs) the store and the target's
	// leftovers; oops doctor runs it too.
	Fsck      func(ctx context.Context, repair, deep bool) (*store.FsckResult, error)
	Progressf func(format string, args ...any)

	Repair, Deep, JSON bool
	Export             iostreams.Exporter // --jq, --template
}

// newFsckCmd builds `oops fsck`; runF replaces the run in flag tests (nil: fsckRun).
func newFsckCmd(f *Factory, runF func(context.Context, *FsckOptions) error) *cobra.Command {
	opts := &FsckOptions{IO: f.IO, Fsck: func(ctx context.Context, repair, deep bool) (*store.FsckResult, error) {
		return f.Runner().Fsck(ctx, repair, deep)
	}, Progressf: f.IO.Progressf}
	c := &cobra.Command{
		Use:   "fsck",
		Short: "Check the store's objects against each other; --repair rebuilds what is derived",
		Long: `fsck checks, like git fsck, everything oops keeps for the application:
the release index against the release metadata against the artifacts
(an entry without metadata or artifact, metadata not in the index,
metadata that disagrees with its artifact's size), the release marks
(decodable, naming releases that exist), every event of the history, the
lock (decodable, not stale), the hook markers, and leftovers of
interrupted work: temporary files of the directory store, unfinished S3
multipart uploads, half-unpacked releases of the local target (older than
24h, so nothing still running is touched).

Each problem names the object, what is wrong and what it means, and
whether --repair fixes it. --deep also re-reads every artifact and checks
its SHA-256 against the one recorded at publish.

--repair rebuilds what can be derived from immutable objects: the index
from the release metadata and a listing of the artifacts, the marks from
the history; it removes leftovers, a stale lock and undecodable hook
markers. It never deletes an artifact or an event.

Exit status: 0 when nothing is wrong (or --repair fixed everything), 1
otherwise, 2 for a bad .oopsrc.`,
		Example: `  oops fsck
  oops fsck --deep          # also re-hash every artifact
  oops fsck --repair        # rebuild the index and marks, remove leftovers
  oops fsck --json | jq -r '.problems[] | select(.repairable) | .key'`,
		Args: noArgs,
	}
	fl := c.Flags()
	fl.BoolVar(&opts.Repair, "repair", false, "rebuild the index and the marks, remove leftovers (never an artifact or an event)")
	fl.BoolVar(&opts.Deep, "deep", false, "re-read every artifact and check its SHA-256")
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	return runCmd(c, opts, runF, fsckRun)
}

// errFsckProblems: fsck found something it did not (or could not) repair.
var errFsckProblems = errors.New("fsck found problems")

func fsckRun(ctx context.Context, opts *FsckOptions) error {
	res, err := opts.Fsck(ctx, opts.Repair, opts.Deep)
	if err != nil {
		return err
	}
	if opts.JSON {
		out := struct {
			*store.FsckResult
			Clean bool `json:"clean"`
		}{res, res.Clean()}
		if out.Problems == nil {
			out.Problems = []store.Problem{}
		}
		if err := opts.Export.Write(opts.IO.Out, out, time.Now); err != nil {
			return err
		}
	} else {
		for _, p := range res.Problems {
			state := ""
			switch {
			case p.Repaired:
				state = " [repaired]"
			case p.RepairError != "":
				state = " [repair failed: " + p.RepairError + "]"
			case p.Repairable:
				state = " [--repair fixes it]"
			}
			fmt.Fprintf(opts.IO.Out, "%s %s: %s%s\n", p.Kind, p.Key, p.Detail, state)
		}
		opts.Progressf("%s", workflow.FsckSummary(res))
	}
	if !res.Clean() {
		return fmt.Errorf("%w%w", errSilent, errFsckProblems)
	}
	return nil
}
