package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// tally counts a store's calls and the body bytes it moved, by operation.
type tally struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int
	bytes int64
	gets  []string
}

func newTally(s store.Store) *tally { return &tally{Store: s, calls: map[string]int{}} }

func (c *tally) count(op string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
	c.bytes += n
}

func (c *tally) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls, c.bytes, c.gets = map[string]int{}, 0, nil
}

func (c *tally) List(ctx context.Context, p string, o store.ListOptions, fn func(store.Object) error) error {
	c.count("List", 0)
	return c.Store.List(ctx, p, o, fn)
}

func (c *tally) Get(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	rc, obj, err := c.Store.Get(ctx, key)
	c.count("Get", obj.Size)
	c.mu.Lock()
	c.gets = append(c.gets, key)
	c.mu.Unlock()
	return rc, obj, err
}

func (c *tally) Stat(ctx context.Context, key string) (store.Object, error) {
	c.count("Stat", 0)
	return c.Store.Stat(ctx, key)
}

func (c *tally) Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (store.Object, error) {
	c.count("Create", size)
	return c.Store.Create(ctx, key, body, size, meta)
}

func (c *tally) Replace(ctx context.Context, key string, body []byte, etag string) (store.Object, error) {
	c.count("Replace", int64(len(body)))
	return c.Store.Replace(ctx, key, body, etag)
}

// metaGets counts reads of per-release metadata.
func (c *tally) metaGets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.gets {
		if strings.Contains(k, "/.oops/releases/") {
			n++
		}
	}
	return n
}

// publishAt publishes release n at t0+n hours and dates its artifact so
// (as the store's clock would have), on a directory store.
func publishAt(t *testing.T, x *store.Index, root string, n int) {
	t.Helper()
	body := fmt.Sprint("body ", n)
	in := input(n, body)
	in.Body = strings.NewReader(body)
	in.Size = int64(len(body))
	r, _ := publish(t, x, in)
	when := r.Published.Add(time.Second)
	if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(r.Key)), when, when); err != nil {
		t.Fatal(err)
	}
}

// TestPublishCostIsConstant: a publish writes the artifact and its
// metadata and reads nothing that grows with the store: the same calls
// and bytes at 1 release and at 60.
func TestPublishCostIsConstant(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := newTally(dir.New(root))
	x := store.NewIndex(c, "app")
	cost := func(n int) (map[string]int, int64) {
		c.reset()
		publishAt(t, x, root, n)
		return maps.Clone(c.calls), c.bytes
	}
	firstCalls, firstBytes := cost(1000)
	for n := range 60 {
		publishAt(t, x, root, n)
	}
	if err := x.Compact(ctx); err != nil { // a big snapshot: publish must not read it
		t.Fatal(err)
	}
	calls, b := cost(1001)
	if fmt.Sprint(calls) != fmt.Sprint(firstCalls) || b != firstBytes {
		t.Errorf("publish at 61 releases: %v, %d bytes; at 1: %v, %d bytes; want the same", calls, b, firstCalls, firstBytes)
	}
	if calls["Replace"] != 0 || calls["Get"] != 0 {
		t.Errorf("publish made %v: it rewrote or read something", calls)
	}
}

// TestListCost: a listing lists the artifacts and the metadata keys once
// each and reads the snapshot; it reads the metadata objects the snapshot
// lacks, and writes a new snapshot once more than a few were missing.
func TestListCost(t *testing.T) {
	root := t.TempDir()
	s := dir.New(root)
	x := store.NewIndex(s, "app")
	const n = 40 // more than List reads before it compacts
	for i := range n {
		publishAt(t, x, root, i)
	}
	c := newTally(s)
	y := store.NewIndex(c, "app")
	if rels := list(t, y, 0); len(rels) != n || rels[0].Commit != sha(n-1) || rels[0].Bare {
		t.Fatalf("listed %d releases, first %+v", len(rels), rels[0])
	}
	if c.metaGets() != n || c.calls["Create"] != 1 {
		t.Errorf("first listing: %v, %d metadata reads; want %d reads and a snapshot written", c.calls, c.metaGets(), n)
	}
	c.reset()
	if rels := list(t, y, 0); len(rels) != n || rels[n-1].Subject != "change 0" {
		t.Fatalf("second listing: %d releases", len(rels))
	}
	if c.calls["List"] != 2 || c.calls["Get"] != 1 || len(c.calls) != 2 {
		t.Errorf("listing with a snapshot made %v; want 2 listings (artifacts, metadata) and 1 read", c.calls)
	}
	// Published since the snapshot: read one by one, not compacted yet.
	for i := n; i < n+3; i++ {
		publishAt(t, x, root, i)
	}
	c.reset()
	if rels := list(t, y, 0); len(rels) != n+3 || rels[0].Bare || rels[0].Subject != fmt.Sprint("change ", n+2) {
		t.Fatalf("after 3 more: %d releases, first %+v", len(rels), rels[0])
	}
	if c.metaGets() != 3 || c.calls["Create"]+c.calls["Replace"] != 0 {
		t.Errorf("3 releases newer than the snapshot: %v, %d metadata reads; want 3 and no write", c.calls, c.metaGets())
	}
}

// TestListLimitDecodesWhatItShows: --limit K reads the metadata of the K
// newest releases only, found by the listing's times, and lists the same
// K releases as a full listing.
func TestListLimitDecodesWhatItShows(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := dir.New(root)
	x := store.NewIndex(s, "app")
	bare := "a bare zip of other CI"
	if _, err := s.Create(ctx, release.Key("app", strings.Repeat("f", 40), ".zip"), strings.NewReader(bare), int64(len(bare)), nil); err != nil {
		t.Fatal(err)
	}
	if err := x.Compact(ctx); err != nil { // a snapshot that knows the zip bare
		t.Fatal(err)
	}
	// Published since the snapshot, out of order: the listing's key order
	// is not the time order.
	for _, i := range []int{7, 3, 11, 0, 9, 5, 1, 10, 2, 8, 4, 6} {
		publishAt(t, x, root, i)
	}
	all := list(t, x, 0) // 12 missing are too few to compact
	for _, k := range []int{1, 3, 5, 13} {
		c := newTally(s)
		got := list(t, store.NewIndex(c, "app"), k)
		if commits(got) != commits(all[:k]) {
			t.Errorf("--limit %d: %s, want %s", k, commits(got), commits(all[:k]))
		}
		// The bare zip is newest and needs no read.
		if want := min(k-1, 12); c.metaGets() != want {
			t.Errorf("--limit %d read %d metadata objects, want %d", k, c.metaGets(), want)
		}
	}
}

// TestListReadsStoresOfOlderVersions: a store written by oops before the
// snapshot (index.json complete, without meta_etags, rewritten by every
// publish), with bare zips of other CI, lists as it did: from the index
// and the metadata keys, reading no metadata object. That first listing
// rewrites the index in format 2 (one write); the next ones list no
// metadata keys and read nothing more.
func TestListReadsStoresOfOlderVersions(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := dir.New(root)
	x := store.NewIndex(s, "app")
	releases := map[string]release.Release{}
	for i := range 5 {
		r, _ := publish(t, x, input(i, fmt.Sprint("body ", i)))
		r.ETag = ""
		releases[r.Commit] = r
	}
	// Exactly what the older versions wrote.
	old, err := json.Marshal(struct {
		Version  int                        `json:"version"`
		Releases map[string]release.Release `json:"releases"`
	}{1, releases})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, store.IndexKey("app"), bytes.NewReader(old), int64(len(old)), nil); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 7; i++ {
		body := "bare"
		key := release.Key("app", sha(i), ".zip")
		if _, err := s.Create(ctx, key, strings.NewReader(body), 4, nil); err != nil {
			t.Fatal(err)
		}
		// Uploaded long ago, after the releases: not a publish under way.
		when := t0.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(key)), when, when); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, rels []release.Release) {
		t.Helper()
		nbare := 0
		for _, r := range rels {
			if r.Bare {
				nbare++
				continue
			}
			want := releases[r.Commit]
			if r.Subject != want.Subject || r.SHA256 != want.SHA256 || !r.Published.Equal(want.Published) || r.ETag == "" {
				t.Errorf("%s: release %s: %+v, want %+v", what, r.Short(), r, want)
			}
		}
		if len(rels) != 7 || nbare != 2 || !rels[0].Bare {
			t.Errorf("%s: %d releases, %d bare, first %+v; want 7, the 2 zips of other CI bare, newest first", what, len(rels), nbare, rels[0])
		}
	}
	c := newTally(s)
	check("first listing", list(t, store.NewIndex(c, "app"), 0))
	// Artifacts, markers, metadata keys; the index; its rewrite.
	if c.metaGets() != 0 || c.calls["List"] != 3 || c.calls["Get"] != 1 || c.calls["Replace"] != 1 || c.calls["Create"] != 0 {
		t.Errorf("first listing of an older store: %v (%d metadata reads); want 3 listings, 1 read (the index), 1 rewrite", c.calls, c.metaGets())
	}
	c.reset()
	check("second listing", list(t, store.NewIndex(c, "app"), 0))
	if c.calls["List"] != 2 || c.calls["Get"] != 1 || len(c.calls) != 2 {
		t.Errorf("listing after the rewrite: %v; want 2 listings (artifacts, markers) and 1 read (the index)", c.calls)
	}
	// The older versions still read the rewritten index.
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(store.IndexKey("app"))))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version  int                        `json:"version"`
		Releases map[string]release.Release `json:"releases"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Version != 1 || len(f.Releases) != 5 {
		t.Errorf("rewritten index, as older versions read it: version %d, %d releases, %v; want version 1, 5 releases", f.Version, len(f.Releases), err)
	}
	// A publish leaves the index as it was; the new release lists with
	// its metadata all the same.
	publish(t, x, input(9, "new"))
	after, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(store.IndexKey("app"))))
	if err != nil || !bytes.Equal(after, data) {
		t.Errorf("publish rewrote the index: %v", err)
	}
	found := false
	for _, r := range list(t, x, 0) {
		found = found || (r.Commit == sha(9) && !r.Bare && r.Subject == "change 9")
	}
	if !found {
		t.Errorf("the release published after the index does not list with its metadata")
	}
}

// TestSnapshotEntryRewrittenMetadata: metadata rewritten after the
// snapshot was made (the artifact deleted and other bytes published for
// the commit) is what list shows, not the snapshot's entry.
func TestSnapshotEntryRewrittenMetadata(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	first, _ := publish(t, x, input(1, "first bytes"))
	if err := x.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, first.Key, ""); err != nil {
		t.Fatal(err)
	}
	second, _ := publish(t, x, input(1, "other bytes!"))
	if second.SHA256 == first.SHA256 {
		t.Fatal("same checksum")
	}
	if rels := list(t, x, 0); len(rels) != 1 || rels[0].SHA256 != second.SHA256 || rels[0].Size != second.Size {
		t.Errorf("listed %+v, want the metadata of the bytes stored now (%s)", rels, second.SHA256)
	}
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
	if err != nil || len(res.Problems) != 0 {
		t.Errorf("fsck after a republish: %s, %v; want no problems", kinds(res.Problems), err)
	}
}

// TestFsckNormalPublishIsClean: releases published after the snapshot
// are no problem to fsck.
func TestFsckNormalPublishIsClean(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	publish(t, x, input(1, "one"))
	if err := x.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, x, input(2, "two"))
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
	if err != nil || len(res.Problems) != 0 || res.Releases != 2 {
		t.Errorf("fsck: %s, %d releases, %v; want 2 releases, no problems", kinds(res.Problems), res.Releases, err)
	}
}

// TestUnchangedMarksAreNotWritten: an update that changes nothing (a
// publish's event) writes nothing, and creates no marks where there were
// none.
func TestUnchangedMarksAreNotWritten(t *testing.T) {
	ctx := context.Background()
	c := newTally(dir.New(t.TempDir()))
	publishEv := &release.Event{App: "app", Action: release.ActionPublish, Result: release.ResultOK, Time: t0, To: release.Side{Commit: sha(1)}}
	if store.ChangesMarks(publishEv) {
		t.Error("ChangesMarks(publish) = true")
	}
	deploy := &release.Event{App: "app", Action: release.ActionDeploy, Result: release.ResultOK, Time: t0, To: release.Side{Color: release.Blue, Commit: sha(1)}}
	if !store.ChangesMarks(deploy) {
		t.Error("ChangesMarks(deploy) = false")
	}
	apply := func(ev *release.Event) {
		t.Helper()
		if err := store.UpdateMarks(ctx, c, "app", func(m store.Marks) { m.ApplyEvent(ev) }); err != nil {
			t.Fatal(err)
		}
	}
	apply(publishEv)
	if n := c.calls["Create"] + c.calls["Replace"]; n != 0 {
		t.Errorf("no marks and a publish: %d writes", n)
	}
	apply(deploy)
	if c.calls["Create"] != 1 {
		t.Fatalf("a deploy: %v, want marks created", c.calls)
	}
	c.reset()
	apply(publishEv)
	apply(deploy) // the same deploy again: same marks
	if n := c.calls["Create"] + c.calls["Replace"]; n != 0 {
		t.Errorf("unchanged marks: %v, want no write", c.calls)
	}
}

// TestConcurrentPublishAndList: publishers and listers at once, each with
// its own view of the store as separate processes have, the listers
// compacting as they go: no release is lost or shown without its
// metadata, the snapshot stays readable, and fsck finds nothing wrong.
func TestConcurrentPublishAndList(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	const n = 80
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Go(func() {
			x := store.NewIndex(dir.New(root), "app")
			for i := range jobs {
				body := fmt.Sprint("body ", i)
				in := input(i, body)
				in.Body, in.Size = strings.NewReader(body), int64(len(body))
				if _, _, err := x.Publish(ctx, in); err != nil {
					t.Error(err)
				}
			}
		})
	}
	done := make(chan struct{})
	var lw sync.WaitGroup
	for range 3 {
		lw.Go(func() {
			x := store.NewIndex(dir.New(root), "app")
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := x.List(ctx, 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(done)
	lw.Wait()
	x := store.NewIndex(dir.New(root), "app")
	rels := list(t, x, 0)
	if len(rels) != n {
		t.Fatalf("listed %d releases, want %d", len(rels), n)
	}
	for _, r := range rels {
		if r.Bare || r.SHA256 == "" {
			t.Errorf("%s listed without its metadata", r.Short())
		}
	}
	res, err := store.Fsck(ctx, dir.New(root), store.FsckOptions{App: "app"})
	if err != nil || len(res.Problems) != 0 {
		t.Errorf("fsck: %s, %v", kinds(res.Problems), err)
	}
}
