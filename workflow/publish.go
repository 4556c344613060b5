package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/release/archive"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// PublishRequest is what `oops publish` publishes.
type PublishRequest struct {
	// File is the artifact as the operator named it, relative to WorkDir.
	File string
	// Commit is the revision it was built from (SHA, tag, branch, HEAD~N).
	Commit string
	// DryRun checks everything and uploads nothing.
	DryRun bool
	// AllowDirty publishes HEAD although tracked files differ from it,
	// recording dirty: true.
	AllowDirty bool
	// Progress, when set, wraps the artifact while it uploads (the CLI
	// draws a bar on a terminal); not asked on a dry run.
	Progress func(size int64, what string) func(io.Reader) io.Reader
}

// PublishOutcome is what a publish did.
type PublishOutcome struct {
	Release release.Release
	// Commit is the full SHA the revision resolved to.
	Commit string
	// Created: this call stored the release (on a dry run: would store
	// it); false when the same bytes were already published.
	Created bool
	// Recorded: the same bytes were stored without oops metadata (a zip
	// uploaded by other CI, a publish that died between its writes), and
	// this call wrote it (on a dry run: would write it).
	Recorded bool
	// Store is where the release is.
	Store store.Store
}

// Publish stores a built artifact as the release of a commit, recorded in
// history. It takes no lock: a publish only adds immutable objects, and an
// emergency rollback must never wait behind a long upload.
func (r *Runner) Publish(ctx context.Context, req PublishRequest) (*PublishOutcome, error) {
	ext := release.ExtOf(req.File)
	if ext == "" {
		return nil, target.Hinted(Usagef("%s: not a release artifact", req.File), "publish a .zip, .tar.gz or .tgz file")
	}
	wd, err := r.d.WorkDir()
	if err != nil {
		return nil, err
	}
	file, size, err := openArtifact(wd, req.File)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	// Before anything else: an archive oops would not unpack is never stored.
	if err := checkArtifact(file, size, req.File, ext, ArchiveLimits(c)); err != nil {
		return nil, err
	}
	idx, err := r.d.Index(ctx)
	if err != nil {
		return nil, err
	}
	sha, err := r.d.Resolve(ctx, req.Commit)
	if err != nil {
		if errors.Is(err, release.ErrNoRepo) || (req.Commit == "HEAD" && errors.Is(err, release.ErrUnknownRevision)) {
			return nil, target.Hinted(err, "outside a git repository, name the commit: oops publish FILE --commit <full SHA>")
		}
		return nil, err
	}
	dirty, err := r.checkDirty(wd, sha, req)
	if err != nil {
		return nil, err
	}
	info, err := release.CommitInfo(wd, sha)
	if err != nil {
		// Publishing a commit this clone lacks is allowed; it just has no
		// author or subject.
		r.d.Report.Progressf("note: %s is not in a local git repository; publishing without author and subject", release.Short(sha))
		info = release.Info{}
	}
	user, host := r.d.Who()
	in := store.PublishInput{
		Commit: sha, Ext: ext, Body: file, Size: size, Info: info,
		Publisher: user + "@" + host, Now: r.d.Now(), DryRun: req.DryRun, Dirty: dirty,
	}
	if req.Progress != nil && !req.DryRun {
		in.Progress = req.Progress(size, "publish "+release.Short(sha))
	}
	out := &PublishOutcome{Commit: sha, Store: idx.Store()}
	err = r.Locked(ctx, Change{Action: release.ActionPublish, Command: "oops publish", DryRun: req.DryRun, NoLock: true},
		func(ctx context.Context, ev *release.Event) error {
			ev.To = release.Side{Commit: sha}
			rel, outcome, err := idx.Publish(ctx, in)
			out.Release, out.Created, out.Recorded = rel, outcome == store.Created, outcome == store.Recorded
			return err
		})
	if errors.Is(err, store.ErrImmutable) {
		return nil, target.Hinted(err, "a release never changes: commit the change and publish the new commit")
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// openArtifact opens the artifact named name (relative to wd, the -C DIR)
// and returns its size: a regular file, else bad input.
func openArtifact(wd, name string) (*os.File, int64, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(wd, path) // relative to -C DIR
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, target.Hinted(Usagef("open artifact: %w", err), "pass the path of a built .zip, .tar.gz or .tgz")
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, fmt.Errorf("open artifact: %w", err)
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		return nil, 0, target.Hinted(Usagef("%s is not a regular file", name), "pass the path of a built .zip, .tar.gz or .tgz")
	}
	return file, fi.Size(), nil
}

// checkDirty refuses to publish HEAD from a working tree whose tracked
// files differ from it, unless AllowDirty; it reports whether the release
// is to be marked dirty. Another commit than HEAD (--commit) says where
// the artifact came from, and is not checked.
func (r *Runner) checkDirty(wd, sha string, req PublishRequest) (bool, error) {
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
	if req.AllowDirty {
		r.d.Report.Progressf("note: publishing %s marked dirty: %d tracked file(s) differ from it (%s)", release.Short(sha), len(changed), list)
		return true, nil
	}
	return false, target.Hinted(
		Usagef("publish %s: the working tree of %s differs from HEAD in %d tracked file(s) (%s): the artifact was probably not built from %s; nothing was published",
			release.Short(sha), repo.Root(), len(changed), list, release.Short(sha)),
		"commit or stash the changes, build again and publish; or publish it marked dirty: oops publish "+req.File+" --allow-dirty")
}

// ArchiveLimits are the archive limits of .oopsrc (zero: the defaults),
// the same for publish and for the local target's unpacking.
func ArchiveLimits(c *config.Config) archive.Limits {
	return archive.Limits{
		MaxSize:    c.Values.ArchiveMaxSize,
		MaxEntries: c.Values.ArchiveMaxEntries,
		MaxRatio:   c.Values.ArchiveMaxRatio,
	}
}

// checkArtifact validates the artifact named name (extension ext) with
// the rules the local target unpacks with; an invalid one is bad input
// (exit 2) naming the entry and the rule.
func checkArtifact(r io.ReaderAt, size int64, name, ext string, lim archive.Limits) error {
	const hint = "fix the build so that it makes a valid archive; oops publishes only what it would unpack (README: Release integrity)"
	want := archive.TarGz
	if ext == ".zip" {
		want = archive.Zip
	}
	got, err := archive.Sniff(r, size)
	if err == nil && got != want {
		return target.Hinted(Usagef("publish %s: it is a %s archive, not %s: name it %s", name, got, ext, "."+string(got)),
			"CodeDeploy and the local target read the format from the name")
	}
	if err == nil {
		_, err = archive.Validate(r, size, lim)
	}
	var ae *archive.Error
	if errors.As(err, &ae) {
		return target.Hinted(Usagef("publish %s: %w", name, err), hint)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	return nil
}
