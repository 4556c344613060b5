package store_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// contentETags lists artifacts and adoption markers with an ETag that
// depends on their bytes only, as S3's (the MD5 of a single-part upload):
// the same bytes uploaded again keep their ETag. The directory store's
// change with the file.
type contentETags struct{ store.Store }

func (c contentETags) List(ctx context.Context, prefix string, o store.ListOptions, fn func(store.Object) error) error {
	return c.Store.List(ctx, prefix, o, func(obj store.Object) error {
		if _, _, ok := release.ParseKey("app", obj.Key); ok {
			obj.ETag = fmt.Sprintf(`"size %d"`, obj.Size)
		}
		if strings.HasPrefix(obj.Key, "app/.oops/adopted/") {
			rc, _, err := c.Store.Get(ctx, obj.Key)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			obj.ETag = fmt.Sprintf(`"%x"`, md5.Sum(body))
		}
		return fn(obj)
	})
}

func uploadBare(t *testing.T, s store.Store, n int, body string) {
	t.Helper()
	if _, err := s.Create(context.Background(), release.Key("app", sha(n), ".zip"), strings.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatal(err)
	}
}

func find(rels []release.Release, n int) (release.Release, bool) {
	for _, r := range rels {
		if r.Commit == sha(n) {
			return r, true
		}
	}
	return release.Release{}, false
}

// TestAdoptedBareListsWithMetadata: a bare zip of other CI, known bare to
// the snapshot, then published by oops with the same bytes (its artifact
// unchanged, its metadata new) lists with its metadata, at once and after
// the next snapshot; the listings after that read nothing for it.
func TestAdoptedBareListsWithMetadata(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	publish(t, x, input(1, "one"))
	uploadBare(t, s, 2, "zip of other CI")
	compact(t, x)
	c := newTally(s)
	y := store.NewIndex(c, "app")
	if r, _ := find(list(t, y, 0), 2); !r.Bare || c.metaGets() != 0 {
		t.Fatalf("before adoption: %+v, %d metadata reads; want bare from the snapshot, no read", r, c.metaGets())
	}
	in := input(2, "zip of other CI")
	if _, outcome := publish(t, x, in); outcome != store.Recorded {
		t.Fatalf("publish of the bare zip's bytes: outcome %d, want Recorded (metadata written, nothing created)", outcome)
	}
	for _, when := range []string{"after adoption", "after the next snapshot"} {
		c.reset()
		r, _ := find(list(t, y, 0), 2)
		if r.Bare || r.Subject != "change 2" || r.Author != "Ada" {
			t.Errorf("%s: %+v; want the metadata publish wrote", when, r)
		}
		if want := map[string]int{"after adoption": 1, "after the next snapshot": 0}[when]; c.metaGets() != want {
			t.Errorf("%s: %d metadata reads, want %d", when, c.metaGets(), want)
		}
		compact(t, x)
	}
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
	if err != nil || len(res.Problems) != 0 {
		t.Errorf("fsck: %s, %v; want no problems", kinds(res.Problems), err)
	}
}

// TestBareUploadedAgainByPublish: a bare zip known to the snapshot,
// deleted, then published by oops with the same bytes (the same ETag on
// S3) lists with its metadata: a bare commit is known by its artifact's
// ETag and time.
func TestBareUploadedAgainByPublish(t *testing.T) {
	ctx := context.Background()
	s := contentETags{dir.New(t.TempDir())}
	x := store.NewIndex(s, "app")
	uploadBare(t, s, 3, "same bytes")
	compact(t, x)
	if r, _ := find(list(t, x, 0), 3); !r.Bare {
		t.Fatalf("%+v, want bare", r)
	}
	if err := s.Delete(ctx, release.Key("app", sha(3), ".zip"), ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // another modification time
	publish(t, x, input(3, "same bytes"))
	if r, _ := find(list(t, x, 0), 3); r.Bare || r.Subject != "change 3" {
		t.Errorf("published again: %+v; want its metadata", r)
	}
}

// TestFsckFindsBareWithUnreadMetadata: metadata written for a commit the
// snapshot knows bare, without an adoption marker (an oops of the
// version before, or a marker deleted), lists bare; fsck says so, and
// --repair makes it list with its metadata.
func TestFsckFindsBareWithUnreadMetadata(t *testing.T) {
	ctx := context.Background()
	root, s, x := dirIndex(t)
	uploadBare(t, s, 4, "zip")
	publish(t, x, input(5, "five"))
	compact(t, x)
	in := input(4, "zip")
	in.Body = strings.NewReader("zip")
	in.Size = 3
	publish(t, x, in)
	if err := s.Delete(ctx, store.AdoptedKey("app", sha(4)), ""); err != nil {
		t.Fatal(err)
	}
	if r, _ := find(list(t, x, 0), 4); !r.Bare {
		t.Fatalf("%+v: want bare (the snapshot says so and nothing says otherwise)", r)
	}
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
	if err != nil || kinds(res.Problems) != "index-mismatch app/.oops/index.json "+release.Short(sha(4))+" (repairable)" {
		t.Fatalf("fsck: %s, %v; want the bare record", kinds(res.Problems), err)
	}
	if _, err := store.Fsck(ctx, s, store.FsckOptions{App: "app", Repair: true}); err != nil {
		t.Fatal(err)
	}
	if r, _ := find(list(t, x, 0), 4); r.Bare || r.Subject != "change 4" {
		t.Errorf("after fsck --repair: %+v; want its metadata", r)
	}
	if res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"}); err != nil || len(res.Problems) != 0 {
		t.Errorf("fsck after repair: %s, %v", kinds(res.Problems), err)
	}
	data, err := os.ReadFile(indexPath(root))
	if err != nil || !bytes.Contains(data, []byte(`"format":2`)) {
		t.Errorf("the repaired index is not format 2: %s", data)
	}
}

// TestListSnapshotWrittenByOlderOops: a format 2 snapshot that an older
// oops rewrote (it keeps version and releases only) puts listings back on
// the metadata keys, and the next full listing writes format 2 again.
func TestListSnapshotWrittenByOlderOops(t *testing.T) {
	_, s, x := dirIndex(t)
	for i := range 3 {
		publish(t, x, input(i, fmt.Sprint("body ", i)))
	}
	compact(t, x)
	// What a pre-snapshot oops's publish does to it: entries kept, its
	// own added, everything else dropped.
	if !olderOopsRewrite(t, s) {
		t.Fatal("no snapshot")
	}
	uploadBare(t, s, 7, "other CI")
	c := newTally(s)
	y := store.NewIndex(c, "app")
	rels := list(t, y, 0)
	if r, _ := find(rels, 7); len(rels) != 4 || !r.Bare || c.calls["List"] != 3 || c.calls["Replace"] != 1 {
		t.Errorf("listing an index rewritten by an older oops: %d releases, %v; want 4, metadata keys listed, the index rewritten", len(rels), c.calls)
	}
	c.reset()
	if rels := list(t, y, 0); len(rels) != 4 || c.calls["List"] != 2 || c.metaGets() != 0 {
		t.Errorf("next listing: %d releases, %v; want 4, no metadata keys, no metadata read", len(rels), c.calls)
	}
}

// TestListDuringPublish: a listing that compacts between a publish's two
// writes (the artifact stored, its metadata not yet) does not record the
// commit bare: the release lists with its metadata once it is written,
// whether the snapshot was of format 2 already or is being written for
// the first time.
func TestListDuringPublish(t *testing.T) {
	for _, snapshotFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("snapshot before: ", snapshotFirst), func(t *testing.T) {
			s := dir.New(t.TempDir())
			x := store.NewIndex(s, "app")
			publish(t, x, input(1, "one"))
			if snapshotFirst {
				compact(t, x)
			}
			publishFirstWrite(t, s, 2)
			compact(t, x)
			if r, _ := find(list(t, x, 0), 2); !r.Bare {
				t.Fatalf("between the writes: %+v, want bare", r)
			}
			publishSecondWrite(t, s, 2)
			if r, _ := find(list(t, x, 0), 2); r.Bare || r.Subject != "change 2" {
				t.Errorf("after the publish: %+v, want its metadata", r)
			}
		})
	}
}

// TestFsckRepairDuringPublish: fsck --repair that rebuilds the index
// between a publish's two writes (the artifact stored, its metadata not
// yet) does not record the commit bare: the release lists with its
// metadata once it is written.
func TestFsckRepairDuringPublish(t *testing.T) {
	ctx := context.Background()
	root, s, x := dirIndex(t)
	publish(t, x, input(1, "one"))
	compact(t, x)
	// Something for --repair to rebuild.
	if err := os.WriteFile(indexPath(root), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	publishFirstWrite(t, s, 2)
	if _, err := store.Fsck(ctx, s, store.FsckOptions{App: "app", Repair: true}); err != nil {
		t.Fatal(err)
	}
	publishSecondWrite(t, s, 2)
	if r, _ := find(list(t, x, 0), 2); r.Bare || r.Subject != "change 2" {
		t.Errorf("after the publish: %+v, want its metadata", r)
	}
}

// TestAdoptMarkerRepairedByRepublishing: an adoption whose marker could
// not be written says to publish again; doing so writes the marker, and
// the release lists with its metadata, not as the bare zip the snapshot
// knew.
func TestAdoptMarkerRepairedByRepublishing(t *testing.T) {
	ctx := context.Background()
	f := &failing{Store: dir.New(t.TempDir()), key: store.AdoptedKey("app", sha(1))}
	x := store.NewIndex(f, "app")
	uploadBare(t, f, 1, "zip of other CI")
	compact(t, x)
	f.fails.Store(1)
	if _, _, err := x.Publish(ctx, input(1, "zip of other CI")); err == nil || !strings.Contains(err.Error(), "publish again") {
		t.Fatalf("adoption with a failing marker: %v, want advice to publish again", err)
	}
	// Until then it lists bare: publishing again changes that, and says so
	// (oops publish: "recorded ..."), on a dry run too.
	if r, _ := find(list(t, x, 0), 1); !r.Bare {
		t.Fatalf("before publishing again: %+v, want it bare", r)
	}
	dry := input(1, "zip of other CI")
	dry.DryRun = true
	if _, outcome := publish(t, x, dry); outcome != store.Recorded {
		t.Errorf("dry run of publishing again: outcome %d, want Recorded (it would write the marker)", outcome)
	}
	if _, outcome := publish(t, x, input(1, "zip of other CI")); outcome != store.Recorded {
		t.Errorf("publishing again: outcome %d, want Recorded (it wrote the marker: the release no longer lists bare)", outcome)
	}
	if r, _ := find(list(t, x, 0), 1); r.Bare || r.Subject != "change 1" {
		t.Errorf("after publishing again: %+v, want its metadata", r)
	}
	if _, outcome := publish(t, x, input(1, "zip of other CI")); outcome != store.Unchanged {
		t.Errorf("publishing a third time: outcome %d, want Unchanged", outcome)
	}
}

// TestAdoptedAgain: a commit adopted once (its marker folded into the
// snapshot), then deleted by hand but for its marker, uploaded bare again
// by other CI and known bare to the snapshot, then adopted again, lists
// with its new metadata: the second adoption changes the marker, on S3
// too, where an object written again with the same bytes keeps its ETag.
func TestAdoptedAgain(t *testing.T) {
	for name, s := range map[string]func(string) store.Store{
		"dir":      func(root string) store.Store { return dir.New(root) },
		"S3 ETags": func(root string) store.Store { return contentETags{dir.New(root)} },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := s(t.TempDir())
			x := store.NewIndex(s, "app")
			uploadBare(t, s, 1, "first zip")
			publish(t, x, input(1, "first zip"))
			compact(t, x)
			for _, key := range []string{release.Key("app", sha(1), ".zip"), store.ReleaseMetaKey("app", sha(1))} {
				if err := s.Delete(ctx, key, ""); err != nil {
					t.Fatal(err)
				}
			}
			uploadBare(t, s, 1, "second zip, rebuilt")
			compact(t, x)
			if r, _ := find(list(t, x, 0), 1); !r.Bare {
				t.Fatalf("uploaded again by other CI: %+v, want bare", r)
			}
			in := input(1, "second zip, rebuilt")
			in.Info.Subject = "adopted again"
			publish(t, x, in)
			if r, _ := find(list(t, x, 0), 1); r.Bare || r.Subject != "adopted again" {
				t.Errorf("adopted again: %+v, want its new metadata", r)
			}
		})
	}
}

// TestMetadataOfAnotherCommit: metadata (or a snapshot entry made from
// it) that names another commit than the one it is stored for does not
// list that other commit twice: the commit lists bare, as for metadata
// that cannot be read, and Get does not give it the other's name.
func TestMetadataOfAnotherCommit(t *testing.T) {
	ctx := context.Background()
	root, _, x := dirIndex(t)
	publish(t, x, input(1, "one"))
	publish(t, x, input(2, "two"))
	editMeta(t, root, 1, `"commit": "`+sha(1), `"commit": "`+sha(2))
	for _, when := range []string{"read", "from the snapshot"} {
		rels := list(t, x, 0)
		if r, ok := find(rels, 1); len(rels) != 2 || !ok || !r.Bare {
			t.Errorf("%s: %d releases, %+v; want 2, commit 1 bare", when, len(rels), r)
		}
		compact(t, x)
	}
	if r, err := x.Get(ctx, sha(1)); err != nil || r.Commit != sha(1) {
		t.Errorf("Get(commit 1) = %+v, %v", r, err)
	}
}

// TestFsckFindsEntryOfAnotherCommit: a snapshot entry that names another
// commit lists bare (the snapshot vouches for it, so forever); fsck says
// so and --repair rewrites it.
func TestFsckFindsEntryOfAnotherCommit(t *testing.T) {
	ctx := context.Background()
	root, s, x := dirIndex(t)
	publish(t, x, input(1, "one"))
	publish(t, x, input(2, "two"))
	compact(t, x)
	p := indexPath(root)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte(`"commit":"`+sha(1)), []byte(`"commit":"`+sha(2)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if rels := list(t, x, 0); len(rels) != 2 {
		t.Fatalf("%d releases, want 2", len(rels))
	}
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app", Repair: true})
	if err != nil || kinds(res.Problems) != "index-mismatch app/.oops/index.json "+release.Short(sha(1))+" (repairable)" {
		t.Fatalf("fsck: %s, %v; want the entry of commit 1", kinds(res.Problems), err)
	}
	if r, _ := find(list(t, x, 0), 1); r.Bare || r.Subject != "change 1" {
		t.Errorf("after fsck --repair: %+v; want its metadata", r)
	}
}

// TestUpgradeDuringPublishClockSkew: the first listing of a store of
// older oops, between a publish's two writes, does not record the commit
// bare when this machine's clock runs hours ahead of the store's (the
// artifact looks hours old): its age is judged by the store's clock.
func TestUpgradeDuringPublishClockSkew(t *testing.T) {
	ctx := context.Background()
	s := behind{dir.New(t.TempDir())}
	x := store.NewIndex(s, "app")
	old := `{"version":1,"releases":{}}`
	if _, err := s.Create(ctx, store.IndexKey("app"), strings.NewReader(old), int64(len(old)), nil); err != nil {
		t.Fatal(err)
	}
	// The first write of a publish, stored just now by a store whose
	// clock is two hours behind this machine's.
	key := release.Key("app", sha(2), ".zip")
	if _, err := s.Create(ctx, key, strings.NewReader("two"), 3, map[string]string{store.MetaSHA256: "x", store.MetaCommit: sha(2)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := find(list(t, x, 0), 2); !r.Bare {
		t.Fatalf("between the writes: %+v, want bare", r)
	}
	// The second write.
	meta := fmt.Sprintf(`{"commit": %q, "application": "app", "key": %q, "size": 3, "sha256": "x", "subject": "change 2", "published": "2024-05-01T14:00:00Z"}`, sha(2), key)
	if _, err := s.Create(ctx, store.ReleaseMetaKey("app", sha(2)), strings.NewReader(meta), int64(len(meta)), nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := find(list(t, x, 0), 2); r.Bare || r.Subject != "change 2" {
		t.Errorf("after the publish: %+v, want its metadata", r)
	}
}

// behind is a store whose clock is two hours behind this machine's.
type behind struct{ store.Store }

func (b behind) List(ctx context.Context, prefix string, o store.ListOptions, fn func(store.Object) error) error {
	return b.Store.List(ctx, prefix, o, func(obj store.Object) error {
		obj.Modified = obj.Modified.Add(-2 * time.Hour)
		return fn(obj)
	})
}

// aged lists one key as stored two hours before it was.
type aged struct {
	store.Store
	key string
}

func (a aged) List(ctx context.Context, prefix string, o store.ListOptions, fn func(store.Object) error) error {
	return a.Store.List(ctx, prefix, o, func(obj store.Object) error {
		if obj.Key == a.key {
			obj.Modified = obj.Modified.Add(-2 * time.Hour)
		}
		return fn(obj)
	})
}

// TestDeadPublishCostsNoReads: a publish that died between its two
// writes long ago (its artifact carries the commit, its metadata was never
// written) is recorded bare by the next snapshot, not read by every
// listing; publishing it again lists it with its metadata.
func TestDeadPublishCostsNoReads(t *testing.T) {
	ctx := context.Background()
	f := &failing{Store: dir.New(t.TempDir()), key: store.ReleaseMetaKey("app", sha(2))}
	s := aged{f, release.Key("app", sha(2), ".zip")}
	x := store.NewIndex(s, "app")
	publish(t, x, input(1, "one"))
	compact(t, x) // a snapshot of format 2
	f.fails.Store(1)
	if _, _, err := x.Publish(ctx, input(2, "two")); err == nil {
		t.Fatal("publish with a failing metadata write succeeded")
	}
	compact(t, x)
	c := newTally(s)
	if r, _ := find(list(t, store.NewIndex(c, "app"), 0), 2); !r.Bare || c.metaGets() != 0 {
		t.Errorf("after the snapshot: %+v, %d metadata reads; want bare, none", r, c.metaGets())
	}
	publish(t, x, input(2, "two"))
	if r, _ := find(list(t, x, 0), 2); r.Bare || r.Subject != "change 2" {
		t.Errorf("published again: %+v, want its metadata", r)
	}
}

// afterCreate runs fn once, after a Create of key: a listing between a
// publish's two writes.
type afterCreate struct {
	store.Store
	key string
	fn  func()
}

func (a *afterCreate) Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (store.Object, error) {
	o, err := a.Store.Create(ctx, key, body, size, meta)
	if err == nil && key == a.key && a.fn != nil {
		fn := a.fn
		a.fn = nil
		fn()
	}
	return o, err
}

// TestListDuringRepublish: a listing that compacts between the two
// writes of a republish (the artifact deleted, other bytes published for
// the commit: stored, its metadata not yet rewritten) reads the old
// metadata with the new artifact; the release lists with the new
// metadata once it is written.
func TestListDuringRepublish(t *testing.T) {
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	first, _ := publish(t, x, input(1, "first bytes"))
	compact(t, x)
	if err := s.Delete(ctx, first.Key, ""); err != nil {
		t.Fatal(err)
	}
	a := &afterCreate{Store: s, key: first.Key, fn: func() {
		if err := x.Compact(ctx); err != nil {
			t.Error(err)
		}
	}}
	second, _ := publish(t, store.NewIndex(a, "app"), input(1, "other bytes, longer"))
	if a.fn != nil {
		t.Fatal("no listing between the writes")
	}
	for _, when := range []string{"after the republish", "after the next snapshot"} {
		if r, _ := find(list(t, x, 0), 1); r.SHA256 != second.SHA256 || r.Size != second.Size {
			t.Errorf("%s: %+v, want the metadata of the bytes stored now", when, r)
		}
		compact(t, x)
	}
}

// TestUpgradeAfterRepublish: a release published again with other bytes
// after the snapshot (not compacted yet), whose snapshot an older oops
// then rewrote (dropping the artifact ETags), lists with the metadata of
// the bytes stored now, and the upgrade to format 2 does not record the
// old entry as describing them.
func TestUpgradeAfterRepublish(t *testing.T) {
	ctx := context.Background()
	_, s, x := dirIndex(t)
	first, _ := publish(t, x, input(1, "first bytes"))
	compact(t, x)
	if err := s.Delete(ctx, first.Key, ""); err != nil {
		t.Fatal(err)
	}
	second, _ := publish(t, x, input(1, "other bytes, longer"))
	// What an older oops's publish does to the snapshot: entries kept,
	// everything else dropped.
	if !olderOopsRewrite(t, s) {
		t.Fatal("no snapshot")
	}
	for _, when := range []string{"upgrading", "upgraded"} {
		if r, _ := find(list(t, x, 0), 1); r.SHA256 != second.SHA256 || r.Size != second.Size {
			t.Errorf("%s: %+v, want the metadata of the bytes stored now", when, r)
		}
	}
}

// TestPublishedAgainSameBytes: a release deleted (artifact and metadata)
// and published again with the same bytes (on S3, the same ETag) and new
// metadata lists with the new metadata, not the snapshot's entry of the
// first publish: an entry is known by its artifact's ETag and time.
func TestPublishedAgainSameBytes(t *testing.T) {
	ctx := context.Background()
	s := contentETags{dir.New(t.TempDir())}
	x := store.NewIndex(s, "app")
	first, _ := publish(t, x, input(1, "same bytes"))
	compact(t, x)
	for _, key := range []string{first.Key, store.ReleaseMetaKey("app", sha(1))} {
		if err := s.Delete(ctx, key, ""); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond) // another modification time
	in := input(1, "same bytes")
	in.Now, in.Info.Subject = in.Now.Add(24*time.Hour), "published again"
	publish(t, x, in)
	for _, when := range []string{"published again", "after the next snapshot"} {
		if r, _ := find(list(t, x, 0), 1); r.Subject != "published again" || !r.Published.Equal(in.Now) {
			t.Errorf("%s: %+v, want the new metadata", when, r)
		}
		compact(t, x)
	}
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
	if err != nil || len(res.Problems) != 0 {
		t.Errorf("fsck: %s, %v; want no problems", kinds(res.Problems), err)
	}
}

// TestSnapshotWithETagsAlone: a snapshot of the first format 2 writers,
// which recorded each entry's artifact by its ETag alone, is trusted as
// it was: a listing reads no metadata.
func TestSnapshotWithETagsAlone(t *testing.T) {
	root, s, x := dirIndex(t)
	for i := range 3 {
		publish(t, x, input(i, fmt.Sprint("body ", i)))
	}
	compact(t, x)
	p := indexPath(root)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	etags := f["artifact_etags"].(map[string]any)
	for _, r := range list(t, x, 0) {
		etags[r.Commit] = r.ETag
	}
	if data, err = json.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newTally(s)
	if rels := list(t, store.NewIndex(c, "app"), 0); len(rels) != 3 || rels[0].Bare || c.metaGets() != 0 {
		t.Errorf("%d releases, first %+v, %d metadata reads; want 3 from the snapshot, no read", len(rels), rels[0], c.metaGets())
	}
}

// ranged is a directory store that lists as S3 does best: in concurrent
// ranges, a page at a time.
type ranged struct{ *tally }

func (ranged) ListsInRanges() bool { return true }

// TestManyAdoptionMarkers: a store whose releases are mostly adopted zips
// of other CI has more markers than one LIST page holds: the listing reads
// the first page, then the ranges after it concurrently, and sees a marker
// past the first page (an adoption since the snapshot).
func TestManyAdoptionMarkers(t *testing.T) {
	ctx := context.Background()
	d := dir.New(t.TempDir())
	for i := range 1200 {
		h := sha1.Sum([]byte(fmt.Sprint(i)))
		if _, err := d.Create(ctx, store.AdoptedKey("app", hex.EncodeToString(h[:])), strings.NewReader("x"), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	last := strings.Repeat("f", 40) // its marker sorts after every other
	if _, err := d.Create(ctx, release.Key("app", last, ".zip"), strings.NewReader("zip"), 3, nil); err != nil {
		t.Fatal(err)
	}
	c := ranged{newTally(d)}
	x := store.NewIndex(c, "app")
	compact(t, x) // knows it bare
	in := input(0, "zip")
	in.Commit = last
	if _, outcome := publish(t, x, in); outcome != store.Recorded {
		t.Fatalf("adopting: outcome %d, want Recorded", outcome)
	}
	c.reset()
	rels := list(t, x, 0)
	if len(rels) != 1 || rels[0].Bare || rels[0].Subject != "change 0" {
		t.Fatalf("listed %+v; want the adopted release with its metadata", rels)
	}
	// 16 artifact ranges, the first page of markers, the ranges after it.
	if n := c.calls["List"]; n < 16+2 || n > 16+1+16 {
		t.Errorf("%d LISTs; want the 16 artifact ranges, one page of markers and the ranges after it", n)
	}
}

// dirIndex is a directory store in a temporary folder and the index of
// "app" in it.
func dirIndex(t *testing.T) (string, *dir.Store, *store.Index) {
	root := t.TempDir()
	s := dir.New(root)
	return root, s, store.NewIndex(s, "app")
}

// indexPath is the file of app's snapshot in the directory store at root.
func indexPath(root string) string {
	return filepath.Join(root, filepath.FromSlash(store.IndexKey("app")))
}

// olderOopsRewrite does to app's snapshot what a publish or listing of
// an older oops does: it keeps version and releases, and drops the format
// 2 fields. It reports false when there is no snapshot.
func olderOopsRewrite(t *testing.T, s store.Store) bool {
	t.Helper()
	ctx := context.Background()
	rc, o, err := s.Get(ctx, store.IndexKey("app"))
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]json.RawMessage
	err = json.NewDecoder(rc).Decode(&f)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]json.RawMessage{"version": f["version"], "releases": f["releases"]})
	if _, err := s.Replace(ctx, store.IndexKey("app"), data, o.ETag); err != nil {
		t.Fatal(err)
	}
	return true
}

// editMeta edits release n's metadata file in the directory store at
// root by hand: the first old becomes new.
func editMeta(t *testing.T, root string, n int, old, new string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(store.ReleaseMetaKey("app", sha(n))))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not hold %q", p, old)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// compact writes x's snapshot.
func compact(t *testing.T, x *store.Index) {
	t.Helper()
	if err := x.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// publishFirstWrite stores release n's artifact as Publish does, with
// the commit in its own metadata, and nothing else: a publish between
// its two writes.
func publishFirstWrite(t *testing.T, s store.Store, n int) {
	t.Helper()
	meta := map[string]string{store.MetaSHA256: "x", store.MetaCommit: sha(n)}
	if _, err := s.Create(context.Background(), release.Key("app", sha(n), ".zip"), strings.NewReader("two"), 3, meta); err != nil {
		t.Fatal(err)
	}
}

// publishSecondWrite stores the metadata publishFirstWrite's publish
// would write next, subject "change N".
func publishSecondWrite(t *testing.T, s store.Store, n int) {
	t.Helper()
	meta := fmt.Sprintf(`{"commit": %q, "application": "app", "key": %q, "size": 3, "sha256": "x", "subject": "change %d", "published": "2024-05-01T14:00:00Z"}`,
		sha(n), release.Key("app", sha(n), ".zip"), n)
	if _, err := s.Create(context.Background(), store.ReleaseMetaKey("app", sha(n)), strings.NewReader(meta), int64(len(meta)), nil); err != nil {
		t.Fatal(err)
	}
}

// TestOlderSnapshotRepublishedSameSize: a commit deleted and published
// again with other bytes of the same size, under a snapshot of an older
// oops whose entry has no metadata ETag: the marker the republish left
// says the entry is stale, though the size cannot.
func TestOlderSnapshotRepublishedSameSize(t *testing.T) {
	ctx := context.Background()
	_, s, x := dirIndex(t)
	publish(t, x, input(1, "ab"))
	compact(t, x)
	if err := s.Delete(ctx, release.Key("app", sha(1), ".zip"), ""); err != nil {
		t.Fatal(err)
	}
	in := input(1, "cd")
	in.Info.Subject = "again"
	publish(t, x, in)
	// An older oops rewrites the snapshot: version and releases only.
	if !olderOopsRewrite(t, s) {
		t.Fatal("no snapshot")
	}
	for _, limit := range []int{0, 1, 0} {
		if r, _ := find(list(t, x, limit), 1); r.Subject != "again" {
			t.Errorf("list --limit %d: %q, want the republished metadata", limit, r.Subject)
		}
	}
}

// TestRepublishOverMetadataOfAnotherCommit: two commits whose builds
// are the same bytes, the second's objects copied by hand from the
// first's: publishing the second commit again, as publish says it
// repairs metadata, gives it its own metadata, not the first's.
func TestRepublishOverMetadataOfAnotherCommit(t *testing.T) {
	ctx := context.Background()
	_, s, x := dirIndex(t)
	publish(t, x, input(1, "same"))
	rel1, err := x.Get(ctx, sha(1))
	if err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(rel1)
	uploadBare(t, s, 2, "same")
	if _, err := s.Create(ctx, store.ReleaseMetaKey("app", sha(2)), bytes.NewReader(meta), int64(len(meta)), nil); err != nil {
		t.Fatal(err)
	}
	r, _ := publish(t, x, input(2, "same"))
	if r.Commit != sha(2) {
		t.Errorf("publish of commit 2 returned the release of %s", release.Short(r.Commit))
	}
	if got, _ := find(list(t, x, 0), 2); got.Bare || got.Subject != "change 2" {
		t.Errorf("listed %+v; want commit 2 with its metadata", got)
	}
	if got, err := x.Get(ctx, sha(2)); err != nil || got.Bare || got.Subject != "change 2" {
		t.Errorf("Get(commit 2) = %+v, %v; want its metadata", got, err)
	}
}

// TestFsckOlderSnapshotRepublishedSameSize: the stale entry of
// TestOlderSnapshotRepublishedSameSize is read by listings, for its
// marker: to fsck, as for a release published since, it is no problem.
func TestFsckOlderSnapshotRepublishedSameSize(t *testing.T) {
	ctx := context.Background()
	_, s, x := dirIndex(t)
	publish(t, x, input(1, "ab"))
	compact(t, x)
	if err := s.Delete(ctx, release.Key("app", sha(1), ".zip"), ""); err != nil {
		t.Fatal(err)
	}
	publish(t, x, input(1, "cd"))
	if !olderOopsRewrite(t, s) {
		t.Fatal("no snapshot")
	}
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
	if err != nil || len(res.Problems) != 0 {
		t.Errorf("fsck: %s, %v; want no problems", kinds(res.Problems), err)
	}
}

// TestFsckFindsMetadataNamingAnotherArtifact: metadata of commit 1 that
// names commit 2's artifact (copied by hand) lists commit 1 bare; fsck
// says why, as for metadata it cannot read.
func TestFsckFindsMetadataNamingAnotherArtifact(t *testing.T) {
	ctx := context.Background()
	root, s, x := dirIndex(t)
	publish(t, x, input(1, "one"))
	publish(t, x, input(2, "two"))
	editMeta(t, root, 1, release.Key("app", sha(1), ".zip"), release.Key("app", sha(2), ".zip"))
	if r, _ := find(list(t, x, 0), 1); !r.Bare {
		t.Fatalf("%+v: want bare (its metadata describes another artifact)", r)
	}
	res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
	if err != nil || !strings.HasPrefix(kinds(res.Problems), "corrupt app/.oops/releases/"+sha(1)+".json") {
		t.Errorf("fsck: %s, %v; want the metadata of commit 1 reported", kinds(res.Problems), err)
	}
}
