package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// PublishOptions are what `oops publish` runs with: flags and dependencies.
type PublishOptions struct {
	IO     *IOStreams
	Runner func() *workflow.Runner

	File   string
	Commit string
	DryRun bool
	JSON   bool
	Export iostreams.Exporter // --jq, --template
	Yes    bool
	// AllowDirty publishes HEAD although tracked files differ from it,
	// recording dirty: true.
	AllowDirty bool
}

// newPublishCmd builds `oops publish`; runF replaces the run in flag tests
// (nil: publishRun).
func newPublishCmd(f *Factory, runF func(context.Context, *PublishOptions) error) *cobra.Command {
	opts := &PublishOptions{IO: f.IO, Runner: f.Runner}
	c := &cobra.Command{
		Use:   "publish FILE",
		Short: "Store a built artifact as the release of a commit",
		Long: `Store FILE (.zip, .tar.gz or .tgz) as the release of a commit, at the
original key layout <app>/<app>-<full-sha>.<ext>, with its metadata (author,
subject, branch, tags, size, SHA-256, who published it and when).

A release never changes: publishing the same bytes again does nothing and
exits 0; different bytes for a published commit are refused (exit 4) and
nothing is touched. The same bytes as a zip already in the store without
oops metadata (uploaded by other CI, listed "bare") get their metadata
recorded ("recorded ..."). Two publishers racing on one commit cannot both win.
Publish never asks for confirmation, since it cannot overwrite anything.

Publishing HEAD while tracked files differ from it (modified, staged or
deleted; untracked files do not count) is refused (exit 2): the artifact
was probably not built from the commit it would be labelled with. Commit
or stash, build again and publish; or pass --allow-dirty, which publishes
it with "dirty": true in its metadata, shown by oops list.`,
		Example: `  oops publish build/app.zip                  # the release of HEAD
  oops publish app.tar.gz --commit v1.4.2     # of a tag, branch, SHA or HEAD~1
  oops publish app.zip --dry-run              # check everything, upload nothing
  oops publish app.zip --json                 # print the release as JSON`,
		Args: exactArgs(1, "one FILE (.zip, .tar.gz or .tgz)"),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"zip", "tgz", "gz"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&opts.Commit, "commit", "c", "HEAD", "the `rev` FILE was built from: SHA (>= 4 hex digits, unique), tag, branch, HEAD~N")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "resolve, check and print what would be published; upload nothing")
	addJSONFlags(c, &opts.JSON, &opts.Export, "print the release as JSON")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "accepted for scripts that pass it to every command; publish never asks")
	fl.BoolVar(&opts.AllowDirty, "allow-dirty", false, "publish HEAD although tracked files differ from it, marked dirty")
	return runCmd(c, opts, runF, publishRun)
}

// publishResult is what publish prints with --json.
type publishResult struct {
	release.Release
	Created bool `json:"created"`
	// Recorded: the artifact was in the store already without oops
	// metadata, which this publish wrote.
	Recorded bool `json:"recorded,omitempty"`
	DryRun   bool `json:"dry_run,omitempty"`
}

func publishRun(ctx context.Context, opts *PublishOptions) error {
	req := workflow.PublishRequest{File: opts.File, Commit: opts.Commit, DryRun: opts.DryRun, AllowDirty: opts.AllowDirty}
	if opts.IO.ErrTTY {
		req.Progress = opts.IO.ProgressBar
	}
	out, err := opts.Runner().Publish(ctx, req)
	if err != nil {
		return err
	}
	rel, created, sha := out.Release, out.Created, out.Commit
	if opts.JSON {
		return opts.Export.Write(opts.IO.Out, publishResult{Release: rel, Created: created, Recorded: out.Recorded, DryRun: opts.DryRun}, time.Now)
	}
	desc := fmt.Sprintf("%s (%s, %s)", release.Short(sha), rel.Key, release.HumanSize(rel.Size))
	switch {
	case opts.DryRun && created:
		fmt.Fprintf(opts.IO.Out, "would publish %s to %s\n", desc, out.Store)
	case created:
		fmt.Fprintf(opts.IO.Out, "published %s to %s\n", desc, out.Store)
	case opts.DryRun && out.Recorded:
		fmt.Fprintf(opts.IO.Out, "would record %s: the same bytes are in %s without oops metadata; publish writes it\n", desc, out.Store)
	case out.Recorded:
		fmt.Fprintf(opts.IO.Out, "recorded %s: the same bytes were in %s without oops metadata (a bare upload, or a publish that did not finish); its metadata is written now\n", desc, out.Store)
	default:
		fmt.Fprintf(opts.IO.Out, "%s is already published with the same bytes; nothing to do\n", desc)
	}
	return nil
}
