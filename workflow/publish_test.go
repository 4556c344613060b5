package workflow

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

// publishFixture is a Runner in a git clone with one commit (app.txt) and
// a built build.zip beside it; it returns the commit.
func publishFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	fx := newFixture(t, "")
	repo, err := git.PlainInit(fx.wd, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.wd, "app.txt"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("app.txt"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Ada", Email: "ada@example.com", When: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)}
	h, err := wt.Commit("first release", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("app.txt")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("v1"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.wd, "build.zip"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fx.d.Index = func(context.Context) (*store.Index, error) { return store.NewIndex(fx.st, "api"), nil }
	fx.d.Resolve = func(_ context.Context, rev string) (string, error) { return release.Resolve(fx.wd, rev, nil) }
	return fx, h.String()
}

// published lists the releases and the history of api.
func published(t *testing.T, fx *fixture) ([]release.Release, []release.Event) {
	t.Helper()
	ctx := context.Background()
	rels, err := store.NewIndex(fx.st, "api").List(ctx, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	evs, err := store.ListEvents(ctx, fx.st, "api", store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return rels, evs
}

func TestPublishRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx, sha := publishFixture(t)
	var progressed string
	out, err := fx.runner().Publish(ctx, PublishRequest{File: "build.zip", Commit: "HEAD",
		Progress: func(size int64, what string) func(r io.Reader) io.Reader {
			progressed = what
			return func(r io.Reader) io.Reader { return r }
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Created || out.Commit != sha || out.Release.Commit != sha || out.Release.Subject != "first release" ||
		out.Release.Dirty || out.Release.Publisher != "ada@"+hostOf(fx) {
		t.Errorf("outcome = %+v, want %s created, with its subject, by ada", out, sha[:7])
	}
	if progressed != "publish "+sha[:7] {
		t.Errorf("progress asked for %q", progressed)
	}
	rels, evs := published(t, fx)
	if len(rels) != 1 || rels[0].Commit != sha {
		t.Errorf("releases = %+v, want %s", rels, sha[:7])
	}
	if len(evs) != 1 || evs[0].Action != release.ActionPublish || evs[0].Result != release.ResultOK || evs[0].To.Commit != sha {
		t.Errorf("history = %+v, want the publish of %s", evs, sha[:7])
	}
	// The same bytes again: nothing to do, and said so.
	again, err := fx.runner().Publish(ctx, PublishRequest{File: "build.zip", Commit: "HEAD"})
	if err != nil || again.Created {
		t.Errorf("publishing again = %+v, %v; want not created", again, err)
	}
}

func hostOf(fx *fixture) string { _, h := fx.d.Who(); return h }

func TestPublishDirtyTree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx, sha := publishFixture(t)
	if err := os.WriteFile(filepath.Join(fx.wd, "app.txt"), []byte("v2, not committed"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := fx.runner().Publish(ctx, PublishRequest{File: "build.zip", Commit: "HEAD"})
	var ue UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "differs from HEAD in 1 tracked file(s) (app.txt)") ||
		!strings.Contains(hintOf(err), "oops publish build.zip --allow-dirty") {
		t.Fatalf("err = %v (hint %q), want a refusal naming app.txt and --allow-dirty", err, hintOf(err))
	}
	if rels, evs := published(t, fx); len(rels) != 0 || len(evs) != 0 {
		t.Fatalf("refused, yet stored %v and recorded %v", rels, evs)
	}

	out, err := fx.runner().Publish(ctx, PublishRequest{File: "build.zip", Commit: "HEAD", AllowDirty: true})
	if err != nil || !out.Created || !out.Release.Dirty {
		t.Fatalf("--allow-dirty = %+v, %v; want it published, dirty", out, err)
	}
	want := "note: publishing " + sha[:7] + " marked dirty: 1 tracked file(s) differ from it (app.txt)\n"
	if got := fx.errOut.String(); got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestPublishDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx, sha := publishFixture(t)
	out, err := fx.runner().Publish(ctx, PublishRequest{File: "build.zip", Commit: "HEAD", DryRun: true,
		Progress: func(int64, string) func(io.Reader) io.Reader {
			t.Error("a dry run draws upload progress")
			return nil
		}})
	if err != nil || !out.Created || out.Commit != sha {
		t.Fatalf("dry run = %+v, %v; want %s would be created", out, err, sha[:7])
	}
	if rels, evs := published(t, fx); len(rels) != 0 || len(evs) != 0 {
		t.Errorf("dry run stored %v and recorded %v", rels, evs)
	}
}

func TestPublishRefusesWhatIsNoArtifact(t *testing.T) {
	t.Parallel()
	fx, _ := publishFixture(t)
	if err := os.WriteFile(filepath.Join(fx.wd, "fake.zip"), []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(fx.wd, "dir.zip"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"app.txt", "missing.zip", "fake.zip", "dir.zip"} {
		_, err := fx.runner().Publish(context.Background(), PublishRequest{File: file, Commit: "HEAD"})
		var ue UsageError
		if !errors.As(err, &ue) || hintOf(err) == "" {
			t.Errorf("publish %s: %v, want bad input with a hint", file, err)
		}
	}
	if rels, evs := published(t, fx); len(rels) != 0 || len(evs) != 0 {
		t.Errorf("stored %v and recorded %v", rels, evs)
	}
}
