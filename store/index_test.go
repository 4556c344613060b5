package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

func sha(n int) string { return fmt.Sprintf("%040x", 0xabc0000+n) }

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func input(n int, body string) store.PublishInput {
	return store.PublishInput{
		Commit: sha(n), Ext: ".zip", Body: strings.NewReader(body), Size: int64(len(body)),
		Info:      release.Info{Author: "Ada", Email: "ada@example.com", Subject: fmt.Sprintf("change %d", n), Branch: "main", Tags: []string{"v1"}},
		Publisher: "ci@runner", Now: t0.Add(time.Duration(n) * time.Hour),
	}
}

func publish(t *testing.T, x *store.Index, in store.PublishInput) (release.Release, store.Outcome) {
	t.Helper()
	r, outcome, err := x.Publish(context.Background(), in)
	if err != nil {
		t.Fatalf("Publish(%s): %v", release.Short(in.Commit), err)
	}
	return r, outcome
}

func list(t *testing.T, x *store.Index, limit int) []release.Release {
	t.Helper()
	rels, err := x.List(context.Background(), limit)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return rels
}

func commits(rels []release.Release) string {
	var s []string
	for _, r := range rels {
		s = append(s, r.Short())
	}
	return strings.Join(s, ",")
}

func TestPublishAndList(t *testing.T) {
	ctx := context.Background()
	x := store.NewIndex(dir.New(t.TempDir()), "app")
	for _, n := range []int{2, 1, 3} {
		r, created := publish(t, x, input(n, "bytes "+fmt.Sprint(n)))
		if created != store.Created || r.Key != "app/app-"+sha(n)+".zip" || r.SHA256 == "" || r.Size != 7 {
			t.Errorf("Publish(%d) = %+v created=%v; want the original key layout, size and checksum", n, r, created)
		}
	}
	rels := list(t, x, 0)
	if got, want := commits(rels), release.Short(sha(3))+","+release.Short(sha(2))+","+release.Short(sha(1)); got != want {
		t.Errorf("List order = %s, want newest first %s", got, want)
	}
	r := rels[0]
	if r.Bare || r.Author != "Ada" || r.Subject != "change 3" || r.Publisher != "ci@runner" || !r.Published.Equal(t0.Add(3*time.Hour)) ||
		r.Branch != "main" || len(r.Tags) != 1 || r.ETag == "" {
		t.Errorf("listed release lacks its metadata: %+v", r)
	}
	if got := commits(list(t, x, 2)); got != release.Short(sha(3))+","+release.Short(sha(2)) {
		t.Errorf("List(limit 2) = %s", got)
	}
	got, err := x.Get(ctx, sha(2))
	if err != nil || got.Subject != "change 2" || got.Bare {
		t.Errorf("Get = %+v, %v", got, err)
	}
	if _, err := x.Get(ctx, sha(9)); !errors.Is(err, release.ErrNotPublished) {
		t.Errorf("Get(unpublished) err = %v, want ErrNotPublished", err)
	}
	cs, err := x.Commits(ctx)
	if err != nil || len(cs) != 3 {
		t.Errorf("Commits = %v, %v", cs, err)
	}
	rc, err := x.Open(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "bytes 2" {
		t.Errorf("Open read %q", b)
	}
	// Another application in the same store is not listed.
	other := store.NewIndex(x.Store(), "app2")
	publish(t, other, input(5, "other app"))
	if len(list(t, x, 0)) != 3 {
		t.Errorf("an app2 release shows in app's list")
	}
}

func TestPublishSameBytesIsNoop(t *testing.T) {
	x := store.NewIndex(dir.New(t.TempDir()), "app")
	first, _ := publish(t, x, input(1, "same"))
	again := input(1, "same")
	again.Now = again.Now.Add(time.Hour)
	again.Publisher = "someone@else"
	r, outcome := publish(t, x, again)
	if outcome != store.Unchanged {
		t.Errorf("second publish of the same bytes: outcome %d, want Unchanged (it created or recorded the release again)", outcome)
	}
	if !r.Published.Equal(first.Published) || r.Publisher != first.Publisher || r.ETag != first.ETag {
		t.Errorf("no-op publish changed the release: %+v, first was %+v", r, first)
	}
	if rels := list(t, x, 0); len(rels) != 1 || rels[0].Publisher != "ci@runner" {
		t.Errorf("after no-op publish: %+v", rels)
	}
}

func TestPublishDifferentBytesRefused(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	first, _ := publish(t, x, input(1, "original"))
	before := snapshot(t, s)
	for _, in := range []store.PublishInput{
		input(1, "tampered"),
		func() store.PublishInput { in := input(1, "original"); in.Ext = ".tgz"; return in }(),
	} {
		_, _, err := x.Publish(ctx, in)
		if !errors.Is(err, store.ErrImmutable) {
			t.Errorf("Publish of other bytes/format: err = %v, want ErrImmutable", err)
		}
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("a refused publish changed the store:\nbefore %s\nafter  %s", before, after)
	}
	if got, err := x.Get(ctx, sha(1)); err != nil || got.SHA256 != first.SHA256 {
		t.Errorf("release after refused publish: %+v, %v", got, err)
	}
}

// snapshot is every key with its etag.
func snapshot(t *testing.T, s store.Store) string {
	var b strings.Builder
	if err := s.List(context.Background(), "", store.ListOptions{}, func(o store.Object) error {
		fmt.Fprintf(&b, "%s=%s ", o.Key, o.ETag)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestBareArtifact: a zip uploaded by other CI in the original layout lists
// as a bare release; publishing the same bytes adopts it, other bytes are
// refused.
func TestBareArtifact(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	obj, err := s.Create(ctx, release.Key("app", sha(1), ".zip"), strings.NewReader("from ci"), 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "app/README.txt", strings.NewReader("not a release"), 13, nil); err != nil {
		t.Fatal(err)
	}
	rels := list(t, x, 0)
	if len(rels) != 1 || !rels[0].Bare || rels[0].Size != 7 || !rels[0].Published.Equal(obj.Modified) {
		t.Fatalf("bare zip listed as %+v; want one bare release published at the upload time %v", rels, obj.Modified)
	}
	if r, err := x.Get(ctx, sha(1)); err != nil || !r.Bare {
		t.Errorf("Get bare = %+v, %v", r, err)
	}
	if _, _, err := x.Publish(ctx, input(1, "not ci!")); !errors.Is(err, store.ErrImmutable) {
		t.Errorf("publishing other bytes over a bare zip: %v, want ErrImmutable", err)
	}
	r, outcome := publish(t, x, input(1, "from ci"))
	if outcome != store.Recorded || r.Bare || r.Subject != "change 1" || !r.Published.Equal(obj.Modified) {
		t.Errorf("adopting the bare zip: %+v outcome=%d; want Recorded: metadata added, published at upload time", r, outcome)
	}
	if rels := list(t, x, 0); len(rels) != 1 || rels[0].Bare || rels[0].Author != "Ada" {
		t.Errorf("after adopting: %+v", rels)
	}
}

// failing makes writes to one key fail, like a crash between steps.
type failing struct {
	store.Store
	key   string
	fails atomic.Int32
}

func (f *failing) Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (store.Object, error) {
	if key == f.key && f.fails.Add(-1) >= 0 {
		return store.Object{}, errors.New("connection reset")
	}
	return f.Store.Create(ctx, key, body, size, meta)
}

func TestRepairByRepublishing(t *testing.T) {
	for _, key := range []string{store.ReleaseMetaKey("app", sha(1))} {
		t.Run(key, func(t *testing.T) {
			ctx := context.Background()
			f := &failing{Store: dir.New(t.TempDir()), key: key}
			f.fails.Store(1)
			x := store.NewIndex(f, "app")
			_, _, err := x.Publish(ctx, input(1, "bytes"))
			if err == nil || !strings.Contains(err.Error(), "publish again") {
				t.Fatalf("Publish with a failing metadata write: err = %v, want advice to publish again", err)
			}
			if rels := list(t, x, 0); len(rels) != 1 || !rels[0].Bare {
				t.Fatalf("half-published release lists as %+v; want it bare, not missing", rels)
			}
			if _, outcome := publish(t, x, input(1, "bytes")); outcome != store.Recorded {
				t.Errorf("repair publish: outcome %d, want Recorded (its metadata written, the artifact not created again)", outcome)
			}
			if rels := list(t, x, 0); len(rels) != 1 || rels[0].Bare || rels[0].Subject != "change 1" {
				t.Errorf("after repair: %+v", rels)
			}
		})
	}
}

func TestConcurrentPublish(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	t.Run("DifferentCommits", func(t *testing.T) {
		var wg sync.WaitGroup
		for n := range 8 {
			wg.Go(func() {
				// Each publisher has its own view, as separate processes do.
				x := store.NewIndex(dir.New(root), "app")
				if _, _, err := x.Publish(ctx, input(n, fmt.Sprint("body ", n))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		rels := list(t, store.NewIndex(dir.New(root), "app"), 0)
		bare := 0
		for _, r := range rels {
			if r.Bare {
				bare++
			}
		}
		if len(rels) != 8 || bare != 0 {
			t.Errorf("%d releases, %d without metadata after 8 concurrent publishes; want 8 with metadata (lost index updates)", len(rels), bare)
		}
	})
	t.Run("SameCommit", func(t *testing.T) {
		var wg sync.WaitGroup
		var created, refused, other atomic.Int32
		for n := range 6 {
			wg.Go(func() {
				body := "same bytes"
				if n%2 == 1 {
					body = "other bytes " + fmt.Sprint(n)
				}
				_, c, err := store.NewIndex(dir.New(root), "app").Publish(ctx, input(100, body))
				switch {
				case errors.Is(err, store.ErrImmutable):
					refused.Add(1)
				case err != nil:
					other.Add(1)
					t.Error(err)
				case c == store.Created:
					created.Add(1)
				}
			})
		}
		wg.Wait()
		if created.Load() != 1 || other.Load() != 0 {
			t.Errorf("%d publishers created the release (want exactly 1), %d failed oddly", created.Load(), other.Load())
		}
		r, err := store.NewIndex(dir.New(root), "app").Get(ctx, sha(100))
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := store.NewIndex(dir.New(root), "app").Open(ctx, r)
		b, _ := io.ReadAll(rc)
		rc.Close()
		winner := string(b)
		wantRefused := int32(3) // the odd ones differ from "same bytes"
		if winner != "same bytes" {
			wantRefused = 5 // every other body differs from the winner's
		}
		if refused.Load() != wantRefused {
			t.Errorf("winner %q: %d publishers refused, want %d", winner, refused.Load(), wantRefused)
		}
	})
}

func TestDryRunWritesNothing(t *testing.T) {
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	in := input(1, "bytes")
	in.DryRun = true
	r, outcome, err := x.Publish(context.Background(), in)
	if err != nil || outcome != store.Created || r.Key == "" {
		t.Fatalf("dry run = %+v, %v, %v; want the release it would create", r, outcome, err)
	}
	if snap := snapshot(t, s); snap != "" {
		t.Errorf("dry run wrote %s", snap)
	}
}

// TestGetPrefersPublishedArtifact: a second artifact for a published
// commit (another CI's upload, or an attacker with write access to the
// store) sorts before the published one in the store's listing; Get must
// still return what oops published, with its size and SHA-256, so that the
// deploy verifies it, and never the sibling, bare and unverified.
func TestGetPrefersPublishedArtifact(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		ext      string // the published artifact's
		sibling  string
		deleteIt bool // the published artifact is gone
		wantErr  error
	}{
		{name: "tar.gz sibling of a zip", ext: ".zip", sibling: ".tar.gz"},
		{name: "tgz sibling of a zip", ext: ".zip", sibling: ".tgz"},
		{name: "published zip replaced by a tar.gz", ext: ".zip", sibling: ".tar.gz", deleteIt: true, wantErr: release.ErrNotPublished},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dir.New(t.TempDir())
			x := store.NewIndex(s, "app")
			in := input(1, "published bytes")
			in.Ext = tc.ext
			pub, _ := publish(t, x, in)
			evil := "other bytes"
			if _, err := s.Create(ctx, release.Key("app", sha(1), tc.sibling), strings.NewReader(evil), int64(len(evil)), nil); err != nil {
				t.Fatal(err)
			}
			if tc.deleteIt {
				if err := s.Delete(ctx, pub.Key, ""); err != nil {
					t.Fatal(err)
				}
			}
			got, err := x.Get(ctx, sha(1))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get = %+v, %v; want %v: the metadata names an artifact that is gone, another one is not it", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Bare || got.Key != pub.Key || got.SHA256 != pub.SHA256 || got.Size != pub.Size {
				t.Fatalf("Get = %+v, %v; want the published %s with its SHA-256", got, err, pub.Key)
			}
		})
	}
}

// changing is an artifact file that another process rewrites (same size)
// after publish hashed it and before the upload read it again.
type changing struct {
	first, then string
	reads       int
	r           *strings.Reader
}

func (c *changing) Seek(off int64, whence int) (int64, error) {
	body := c.first
	if c.reads > 0 {
		body = c.then
	}
	c.reads++
	c.r = strings.NewReader(body)
	return c.r.Seek(off, whence)
}

func (c *changing) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestPublishFileChangedWhileUploading: the uploaded bytes are the ones
// whose SHA-256 is recorded, or nothing is published; else every deploy
// of the commit fails verification, and republishing the right bytes is
// a no-op against the recorded hash.
func TestPublishFileChangedWhileUploading(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	in := input(1, "")
	in.Body, in.Size = &changing{first: "built bytes", then: "other bytes"}, 11
	if _, _, err := x.Publish(ctx, in); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Fatalf("Publish = %v; want an error saying the file changed while it was published", err)
	}
	if rels := list(t, x, 0); len(rels) != 0 {
		t.Fatalf("after a refused publish the store lists %+v; want nothing", rels)
	}
	if _, created := publish(t, x, input(1, "built bytes")); created != store.Created {
		t.Errorf("publishing the right bytes again did not create the release")
	}
}
