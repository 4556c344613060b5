package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// modelReleases is what the metadata objects and artifacts of "app" say,
// read one by one: the reference a listing must agree with.
func modelReleases(t *testing.T, s store.Store) map[string]release.Release {
	t.Helper()
	ctx := context.Background()
	arts := map[string][]store.Object{}
	if err := s.List(ctx, "app/", store.ListOptions{}, func(o store.Object) error {
		if sha, _, ok := release.ParseKey("app", o.Key); ok {
			arts[sha] = append(arts[sha], o)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string]release.Release{}
	for sha, objs := range arts {
		o := objs[0]
		r := release.Release{Commit: sha, Key: o.Key, Size: o.Size, Published: o.Modified, Bare: true}
		if rc, _, err := s.Get(ctx, store.ReleaseMetaKey("app", sha)); err == nil {
			var m release.Release
			err := json.NewDecoder(rc).Decode(&m)
			rc.Close()
			if err == nil && m.Commit == sha {
				for _, a := range objs {
					if a.Key == m.Key {
						r = m
					}
				}
			}
		}
		out[sha] = r
	}
	return out
}

func describeRel(r release.Release) string {
	return fmt.Sprintf("%s bare=%v size=%d sha=%.6s subj=%q pub=%s", release.Short(r.Commit), r.Bare, r.Size, r.SHA256, r.Subject, r.Published.Format(time.RFC3339Nano))
}

// checkModel compares a full listing and listings with limits with the
// reference.
func checkModel(t *testing.T, x *store.Index, s store.Store, step string) bool {
	t.Helper()
	want := modelReleases(t, s)
	full := list(t, x, 0)
	ok := true
	if len(full) != len(want) {
		t.Errorf("%s: listed %d releases, want %d", step, len(full), len(want))
		ok = false
	}
	seen := map[string]bool{}
	for _, r := range full {
		if seen[r.Commit] {
			t.Errorf("%s: %s listed twice", step, release.Short(r.Commit))
			ok = false
		}
		seen[r.Commit] = true
		w, found := want[r.Commit]
		if !found {
			t.Errorf("%s: listed %s, not in the store", step, release.Short(r.Commit))
			ok = false
			continue
		}
		if r.Bare != w.Bare || r.SHA256 != w.SHA256 || r.Subject != w.Subject || r.Size != w.Size || !r.Published.Equal(w.Published) {
			t.Errorf("%s: listed %s\nwant %s", step, describeRel(r), describeRel(w))
			ok = false
		}
	}
	for k := range len(full) {
		if k == 0 || (k > 4 && k < len(full)-2) {
			continue
		}
		got := list(t, x, k)
		if len(got) != k {
			t.Errorf("%s: --limit %d listed %d", step, k, len(got))
			ok = false
			continue
		}
		for i := range got {
			if describeRel(got[i]) != describeRel(full[i]) {
				t.Errorf("%s: --limit %d [%d] = %s\nfull listing: %s", step, k, i, describeRel(got[i]), describeRel(full[i]))
				ok = false
			}
		}
	}
	return ok
}

// TestListModel runs random sequences of publishes (some dying between
// their writes, some with a listing between them), bare uploads and
// their adoptions, deletions, republishes of other bytes, compactions,
// fsck --repair and snapshots rewritten by an older oops, and after each
// step checks that listings (full, with limits) show what the metadata
// and the artifacts say, and that fsck finds nothing wrong with the
// snapshot ("normal": with nothing deleted nor dying, nothing at all).
func TestListModel(t *testing.T) {
	for _, kind := range []string{"dir", "S3 ETags", "normal"} {
		t.Run(kind, func(t *testing.T) {
			// Seeds that found defects first (533: an older
			// snapshot's entry trusted over a republish's marker),
			// then as many as fit.
			for _, seed := range []uint64{533} {
				if !runModel(t, kind, seed) {
					t.Fatalf("seed %d", seed)
				}
			}
			deadline := time.Now().Add(700 * time.Millisecond)
			for seed := uint64(1); time.Now().Before(deadline); seed++ {
				if !runModel(t, kind, seed) {
					t.Fatalf("seed %d", seed)
				}
			}
		})
	}
}

func runModel(t *testing.T, kind string, seed uint64) bool {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	sk := &skewed{Store: dir.New(t.TempDir()), old: map[string]bool{}}
	hook := &afterCreate{Store: sk}
	var s store.Store = hook
	if kind == "S3 ETags" {
		s = rangedETags{contentETags{s}}
	}
	x := store.NewIndex(s, "app")
	bodies := []string{"a", "bb", "ccc"}
	if kind != "S3 ETags" { // whose ETags tell bytes by their size
		bodies[2] = "cc"
	}
	var log []string
	for step := range 25 {
		n := rng.IntN(5)
		body := bodies[rng.IntN(len(bodies))]
		key := release.Key("app", sha(n), ".zip")
		var op string
		o := rng.IntN(14)
		if normal := kind == "normal"; normal && (o == 3 || o == 7 || o == 8) {
			o = 1
		}
		switch o {
		case 7:
			op = fmt.Sprintf("publish %d %q, dying between its writes", n, body)
			sum := sha256.Sum256([]byte(body))
			meta := map[string]string{store.MetaSHA256: hex.EncodeToString(sum[:]), store.MetaCommit: sha(n)}
			if _, err := s.Create(ctx, key, strings.NewReader(body), int64(len(body)), meta); err != nil && !errors.Is(err, store.ErrExists) {
				t.Fatal(err)
			}
		case 8:
			// Other CI's upload, or a publish that died, long ago (an
			// artifact stored since, by this clock, cannot be aged).
			op = fmt.Sprintf("upload bare %d %q two hours ago", n, body)
			var meta map[string]string
			if rng.IntN(2) == 0 {
				sum := sha256.Sum256([]byte(body))
				meta = map[string]string{store.MetaSHA256: hex.EncodeToString(sum[:]), store.MetaCommit: sha(n)}
				op = fmt.Sprintf("publish %d %q two hours ago, dying between its writes", n, body)
			}
			// Not after metadata of the commit was written: that
			// timeline needs clocks hours apart.
			_, err := s.Stat(ctx, key)
			_, merr := s.Stat(ctx, store.ReleaseMetaKey("app", sha(n)))
			if errors.Is(err, store.ErrNotFound) && errors.Is(merr, store.ErrNotFound) {
				sk.old[key] = true
				if _, err := s.Create(ctx, key, strings.NewReader(body), int64(len(body)), meta); err != nil {
					t.Fatal(err)
				}
			}
		case 9:
			// After the artifact, the metadata or the marker.
			at := []string{key, store.ReleaseMetaKey("app", sha(n)), store.AdoptedKey("app", sha(n))}[rng.IntN(3)]
			op = fmt.Sprintf("publish %d %q, listed after it writes %s", n, body, at)
			hook.key, hook.fn = at, func() { list(t, x, 0) }
			in := input(n, body)
			in.Now = time.Time{}
			_, _, err := x.Publish(ctx, in)
			hook.fn = nil
			if err != nil && !errors.Is(err, store.ErrImmutable) {
				t.Fatal(err)
			}
		case 12:
			// More than a listing reads without compacting: half
			// published, half bare uploads, some of them adopted.
			op = "34 more"
			for i := 100; i < 134; i++ {
				b := fmt.Sprint("many ", i, body)
				if rng.IntN(2) == 0 {
					in := input(i, b)
					in.Now = time.Time{}
					if _, _, err := x.Publish(ctx, in); err != nil && !errors.Is(err, store.ErrImmutable) {
						t.Fatal(err)
					}
					continue
				}
				k := release.Key("app", sha(i), ".zip")
				if _, err := s.Create(ctx, k, strings.NewReader(b), int64(len(b)), nil); err != nil && !errors.Is(err, store.ErrExists) {
					t.Fatal(err)
				}
			}
		case 13:
			op = fmt.Sprintf("older oops publishes %d %q", n, body)
			olderPublish(t, s, n, body)
		case 10:
			op = "fsck --repair"
			if _, err := store.Fsck(ctx, s, store.FsckOptions{App: "app", Repair: true}); err != nil {
				t.Fatal(err)
			}
		case 11:
			op = "older oops rewrites the snapshot"
			olderOopsRewrite(t, s)
		case 0, 1:
			op = fmt.Sprintf("publish %d %q", n, body)
			in := input(n, body)
			in.Now = time.Time{}
			_, _, err := x.Publish(ctx, in)
			if err != nil && !errors.Is(err, store.ErrImmutable) {
				t.Fatal(err)
			}
		case 2:
			op = fmt.Sprintf("upload bare %d %q", n, body)
			_, err := s.Create(ctx, key, strings.NewReader(body), int64(len(body)), nil)
			if err != nil && !errors.Is(err, store.ErrExists) {
				t.Fatal(err)
			}
		case 3:
			op = fmt.Sprintf("delete artifact %d", n)
			delete(sk.old, key)
			if err := s.Delete(ctx, key, ""); err != nil {
				t.Fatal(err)
			}
		case 4:
			op = "compact"
			if err := x.Compact(ctx); err != nil {
				t.Fatal(err)
			}
		case 5:
			op = "list"
			list(t, x, 0)
		case 6:
			op = fmt.Sprintf("list --limit %d", n+1)
			list(t, x, n+1)
		}
		log = append(log, op)
		name := fmt.Sprintf("seed %d step %d (%s)", seed, step, strings.Join(log, "; "))
		if !checkModel(t, x, s, name) {
			return false
		}
		res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Problems {
			if p.Key == store.IndexKey("app") || kind == "normal" {
				t.Errorf("%s: fsck: %s: %s", name, p.Kind, p.Detail)
				return false
			}
		}
	}
	return true
}

// rangedETags lists in concurrent ranges, as on S3.
type rangedETags struct{ contentETags }

func (rangedETags) ListsInRanges() bool { return true }

// skewed lists, stats and gets the artifacts in old as stored two hours
// before they were.
type skewed struct {
	store.Store
	old map[string]bool
}

func (k *skewed) shift(o store.Object) store.Object {
	if k.old[o.Key] {
		o.Modified = o.Modified.Add(-2 * time.Hour)
	}
	return o
}

func (k *skewed) List(ctx context.Context, prefix string, opts store.ListOptions, fn func(store.Object) error) error {
	return k.Store.List(ctx, prefix, opts, func(o store.Object) error { return fn(k.shift(o)) })
}

func (k *skewed) Stat(ctx context.Context, key string) (store.Object, error) {
	o, err := k.Store.Stat(ctx, key)
	return k.shift(o), err
}

func (k *skewed) Get(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	rc, o, err := k.Store.Get(ctx, key)
	return rc, k.shift(o), err
}

// olderPublish publishes as the oops before format 2 did: artifact,
// metadata, then the whole snapshot rewritten with its entry and the
// metadata's ETag, format 2's fields dropped. It publishes new commits
// only.
func olderPublish(t *testing.T, s store.Store, n int, body string) {
	t.Helper()
	ctx := context.Background()
	key := release.Key("app", sha(n), ".zip")
	if _, err := s.Stat(ctx, key); err == nil {
		return
	}
	sum := sha256.Sum256([]byte(body))
	r := release.Release{Commit: sha(n), App: "app", Key: key, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]),
		Published: time.Now().UTC(), Subject: fmt.Sprintf("older %d", n)}
	if _, err := s.Create(ctx, key, strings.NewReader(body), r.Size, map[string]string{store.MetaSHA256: r.SHA256}); err != nil {
		t.Fatal(err)
	}
	meta, _ := json.Marshal(r)
	mo, err := s.Create(ctx, store.ReleaseMetaKey("app", sha(n)), strings.NewReader(string(meta)), int64(len(meta)), nil)
	if errors.Is(err, store.ErrExists) {
		return // not what that version did; out of this model
	}
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version   int                        `json:"version"`
		Releases  map[string]json.RawMessage `json:"releases"`
		MetaETags map[string]string          `json:"meta_etags,omitempty"`
	}
	rc, old, err := s.Get(ctx, store.IndexKey("app"))
	if err == nil {
		err = json.NewDecoder(rc).Decode(&f)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.Releases == nil {
		f.Releases = map[string]json.RawMessage{}
	}
	if f.MetaETags == nil {
		f.MetaETags = map[string]string{}
	}
	f.Version = 1
	f.Releases[sha(n)], f.MetaETags[sha(n)] = meta, mo.ETag
	data, _ := json.Marshal(f)
	if old.Key == "" {
		_, err = s.Create(ctx, store.IndexKey("app"), strings.NewReader(string(data)), int64(len(data)), nil)
	} else {
		_, err = s.Replace(ctx, store.IndexKey("app"), data, old.ETag)
	}
	if err != nil {
		t.Fatal(err)
	}
}
