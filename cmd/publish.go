package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

type publishOptions struct {
	File   string
	Commit string
	DryRun bool
	JSON   bool
	Yes    bool
	// AllowDirty publishes HEAD although tracked files differ from it,
	// recording dirty: true.
	AllowDirty bool
}

func newPublishCmd(f *Factory) *cobra.Command {
	var opts publishOptions
	c := &cobra.Command{
		Use:   "publish FILE",
		Short: "Store a built artifact as the release of a commit",
		Long: `Store FILE (.zip, .tar.gz or .tgz) as the release of a commit, at the
original key layout <app>/<app>-<full-sha>.<ext>, with its metadata (author,
subject, branch, tags, size, SHA-256, who published it and when).

A release never changes: publishing the same bytes again does nothing and
exits 0; different bytes for a published commit are refused (exit 4) and
nothing is touched. Two publishers racing on one commit cannot both win.
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
			return f.runPublish(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&opts.Commit, "commit", "c", "HEAD", "the `rev` FILE was built from: SHA (>= 4 hex digits, unique), tag, branch, HEAD~N")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "resolve, check and print what would be published; upload nothing")
	fl.BoolVar(&opts.JSON, "json", false, "print the release as JSON")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "accepted for scripts that pass it to every command; publish never asks")
	fl.BoolVar(&opts.AllowDirty, "allow-dirty", false, "publish HEAD although tracked files differ from it, marked dirty")
	return c
}

// publishResult is what publish prints with --json.
type publishResult struct {
	release.Release
	Created bool `json:"created"`
	DryRun  bool `json:"dry_run,omitempty"`
}

func (f *Factory) runPublish(ctx context.Context, opts publishOptions) error {
	ext := release.ExtOf(opts.File)
	if ext == "" {
		return withHint(usageErrorf("%s: not a release artifact", opts.File), "publish a .zip, .tar.gz or .tgz file")
	}
	path := opts.File
	wd, err := f.WorkDir()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(wd, path) // relative to -C DIR
	}
	file, err := os.Open(path)
	if err != nil {
		return withHint(usageErrorf("open artifact: %w", err), "pass the path of a built .zip, .tar.gz or .tgz")
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("open artifact: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return withHint(usageErrorf("%s is not a regular file", opts.File), "pass the path of a built .zip, .tar.gz or .tgz")
	}
	c, err := f.Config()
	if err != nil {
		return err
	}
	// Before anything else: an archive oops would not unpack is never stored.
	if err := checkArtifact(file, fi.Size(), opts.File, ext, archiveLimits(c)); err != nil {
		return err
	}
	idx, err := f.Index(ctx)
	if err != nil {
		return err
	}
	sha, err := f.ResolveRev(ctx, opts.Commit)
	if err != nil {
		if errors.Is(err, release.ErrNoRepo) || (opts.Commit == "HEAD" && errors.Is(err, release.ErrUnknownRevision)) {
			return withHint(err, "outside a git repository, name the commit: oops publish FILE --commit <full SHA>")
		}
		return err
	}
	dirty, err := f.checkDirty(wd, sha, opts)
	if err != nil {
		return err
	}
	info, err := release.CommitInfo(wd, sha)
	if err != nil {
		// Publishing a commit this clone lacks is allowed; it just has no
		// author or subject.
		fmt.Fprintf(f.IO.ErrOut, "note: %s is not in a local git repository; publishing without author and subject\n", release.Short(sha))
		info = release.Info{}
	}
	user, host := f.Who()
	in := store.PublishInput{
		Commit: sha, Ext: ext, Body: file, Size: fi.Size(), Info: info,
		Publisher: user + "@" + host, Now: f.Now(), DryRun: opts.DryRun, Dirty: dirty,
	}
	if f.IO.ErrTTY && !opts.DryRun {
		in.Progress = f.progress(fi.Size(), "publish "+release.Short(sha))
	}
	var rel release.Release
	var created bool
	// No lock: a publish only adds immutable objects and updates the index
	// by compare-and-swap, and an emergency rollback must never wait behind
	// a long upload. It is still recorded in history.
	err = f.mutate(ctx, mutateOptions{Action: release.ActionPublish, Command: "oops publish", DryRun: opts.DryRun, NoLock: true},
		func(ctx context.Context, ev *release.Event) error {
			ev.To = release.Side{Commit: sha}
			var err error
			rel, created, err = idx.Publish(ctx, in)
			return err
		})
	if errors.Is(err, store.ErrImmutable) {
		return withHint(err, "a release never changes: commit the change and publish the new commit")
	}
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(f.IO.Out, publishResult{Release: rel, Created: created, DryRun: opts.DryRun})
	}
	desc := fmt.Sprintf("%s (%s, %s)", release.Short(sha), rel.Key, release.HumanSize(rel.Size))
	switch {
	case opts.DryRun && created:
		fmt.Fprintf(f.IO.Out, "would publish %s to %s\n", desc, idx.Store())
	case created:
		fmt.Fprintf(f.IO.Out, "published %s to %s\n", desc, idx.Store())
	default:
		fmt.Fprintf(f.IO.Out, "%s is already published with the same bytes; nothing to do\n", desc)
	}
	return nil
}

// checkDirty refuses to publish HEAD from a working tree whose tracked
// files differ from it, unless --allow-dirty; it reports whether the
// release is to be marked dirty. Another commit than HEAD (--commit) says
// where the artifact came from, and is not checked.
func (f *Factory) checkDirty(wd, sha string, opts publishOptions) (bool, error) {
	repo, err := release.OpenRepo(wd)
	if err != nil || repo.HeadCommit() != sha {
		return false, nil
	}
	changed, err := repo.Changed()
	if err != nil {
		return false, err
	}
	if len(changed) == 0 {
		return false, nil
	}
	list := strings.Join(changed[:min(len(changed), 5)], ", ")
	if len(changed) > 5 {
		list += fmt.Sprintf(", and %d more", len(changed)-5)
	}
	if opts.AllowDirty {
		fmt.Fprintf(f.IO.ErrOut, "note: publishing %s marked dirty: %d tracked file(s) differ from it (%s)\n", release.Short(sha), len(changed), list)
		return true, nil
	}
	return false, withHint(
		usageErrorf("publish %s: the working tree of %s differs from HEAD in %d tracked file(s) (%s): the artifact was probably not built from %s; nothing was published",
			release.Short(sha), repo.Root(), len(changed), list, release.Short(sha)),
		"commit or stash the changes, build again and publish; or publish it marked dirty: oops publish "+opts.File+" --allow-dirty")
}

// progress returns a wrapper that draws a byte progress bar on stderr.
func (f *Factory) progress(size int64, what string) func(io.Reader) io.Reader {
	return func(r io.Reader) io.Reader {
		bar := progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(f.IO.ErrOut),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		pr := progressbar.NewReader(r, bar)
		return &pr
	}
}
