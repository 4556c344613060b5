package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// fsckFixture is a directory store with three published releases, a
// rollback in history (so one is marked BAD) and nothing wrong.
func fsckFixture(t *testing.T) (*dir.Store, string) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	s := dir.New(root)
	x := store.NewIndex(s, "app")
	for n := 1; n <= 3; n++ {
		publish(t, x, input(n, strings.Repeat("x", n*10)))
	}
	if err := x.Compact(ctx); err != nil { // a snapshot, as a grown store has
		t.Fatal(err)
	}
	evs := []release.Event{
		{Time: t0.Add(4 * time.Hour), Action: release.ActionDeploy, Result: release.ResultOK, App: "app", Who: "ada",
			From: release.Side{Color: release.Blue, Commit: sha(1)}, To: release.Side{Color: release.Green, Commit: sha(2)}},
		{Time: t0.Add(5 * time.Hour), Action: release.ActionRollback, Result: release.ResultOK, App: "app", Who: "bob", Reason: "500s",
			From: release.Side{Color: release.Green, Commit: sha(2)}, To: release.Side{Color: release.Blue, Commit: sha(1)}},
	}
	for i := range evs {
		if err := store.AppendEvent(ctx, s, &evs[i]); err != nil {
			t.Fatal(err)
		}
		if err := store.UpdateMarks(ctx, s, "app", func(m store.Marks) { m.ApplyEvent(&evs[i]) }); err != nil {
			t.Fatal(err)
		}
	}
	return s, root
}

// keysOf lists every key of the store under prefix.
func keysOf(t *testing.T, s store.Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := s.List(context.Background(), prefix, store.ListOptions{}, func(o store.Object) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func kinds(ps []store.Problem) string {
	var out []string
	for _, p := range ps {
		s := p.Kind + " " + p.Key
		if p.Commit != "" {
			s += " " + release.Short(p.Commit)
		}
		if p.Repairable {
			s += " (repairable)"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestFsck(t *testing.T) {
	ctx := context.Background()
	write := func(t *testing.T, root, key, body string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := func(t *testing.T, p string) {
		t.Helper()
		when := time.Now().Add(-48 * time.Hour)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	metaKey := func(n int) string { return store.ReleaseMetaKey("app", sha(n)) }
	artKey := func(n int) string { return release.Key("app", sha(n), ".zip") }
	tests := []struct {
		name    string
		breakIt func(t *testing.T, s *dir.Store, root string)
		want    string // kinds(problems), sorted
		// fixed: after --repair, a second fsck is clean.
		fixed bool
		deep  bool
	}{
		{name: "clean", breakIt: func(*testing.T, *dir.Store, string) {}, fixed: true},
		{name: "truncated index", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			write(t, root, store.IndexKey("app"), `{"version":1,"releases":{"`)
		}, want: "corrupt app/.oops/index.json (repairable)", fixed: true},
		{name: "index lost", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			os.Remove(filepath.Join(root, filepath.FromSlash(store.IndexKey("app"))))
			// The snapshot is a cache: list reads the metadata instead.
		}, want: "", fixed: true},
		{name: "metadata lost: recreated from the index", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			os.Remove(filepath.Join(root, filepath.FromSlash(metaKey(2))))
		}, want: "missing-metadata app/.oops/index.json " + release.Short(sha(2)) + " (repairable)", fixed: true},
		{name: "corrupt metadata: rewritten from the index", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			write(t, root, metaKey(2), `{"commit": `)
		}, want: "corrupt " + metaKey(2) + " " + release.Short(sha(2)) + " (repairable)", fixed: true},
		{name: "artifact deleted by hand", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			os.Remove(filepath.Join(root, filepath.FromSlash(artKey(2))))
		}, want: "dangling-mark app/.oops/marks.json " + release.Short(sha(2)) + " (repairable)\n" +
			"missing-artifact " + metaKey(2) + " " + release.Short(sha(2))},
		{name: "artifact truncated", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			write(t, root, artKey(1), "short")
		}, want: "artifact-mismatch " + artKey(1) + " " + release.Short(sha(1))},
		{name: "artifact changed, same size (deep)", deep: true, breakIt: func(t *testing.T, _ *dir.Store, root string) {
			write(t, root, artKey(1), strings.Repeat("y", 10))
		}, want: "artifact-mismatch " + artKey(1) + " " + release.Short(sha(1))},
		{name: "truncated marks", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			write(t, root, store.MarksKey("app"), `{"releases": {"`)
		}, want: "corrupt app/.oops/marks.json (repairable)", fixed: true},
		{name: "corrupt event", breakIt: func(t *testing.T, s *dir.Store, root string) {
			write(t, root, store.EventsPrefix("app")+"0000000000000000001-abc.json", "garbage")
		}, want: "corrupt app/.oops/events/0000000000000000001-abc.json"},
		{name: "stale lock", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			hb := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
			write(t, root, store.LockKey("app"), `{"token":"t","application":"app","holder":"ada","command":"oops deploy","started":"`+hb+`","heartbeat":"`+hb+`","ttl_ms":60000}`)
		}, want: "stale-lock app/.oops/lock.json (repairable)", fixed: true},
		{name: "lock released an hour ago (a tombstone)", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			hb := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
			write(t, root, store.LockKey("app"), `{"application":"app","started":"`+hb+`","heartbeat":"`+hb+`","generation":42,"released":true}`)
		}, want: "", fixed: true},
		{name: "undecodable old lock", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			write(t, root, store.LockKey("app"), `{"tok`)
			old(t, filepath.Join(root, filepath.FromSlash(store.LockKey("app"))))
		}, want: "corrupt app/.oops/lock.json (repairable)", fixed: true},
		{name: "corrupt hook marker", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			write(t, root, store.HooksPrefix("app")+"d-123.json", `{"deployment":"d-123","color":"purple"}`)
			old(t, filepath.Join(root, filepath.FromSlash(store.HooksPrefix("app")+"d-123.json")))
		}, want: "corrupt app/.oops/hooks/d-123.json (repairable)", fixed: true},
		{name: "temp file of a killed write", breakIt: func(t *testing.T, _ *dir.Store, root string) {
			p := filepath.Join(root, dir.Internal, "tmp", "obj-123")
			write(t, root, dir.Internal+"/tmp/obj-123", "half an upload")
			old(t, p)
			write(t, root, dir.Internal+"/tmp/obj-456", "an upload running now")
		}, want: "leftover " + filepath.Join("ROOT", dir.Internal, "tmp", "obj-123") + " (repairable)", fixed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, root := fsckFixture(t)
			tc.breakIt(t, s, root)
			artifacts, events := keysOf(t, s, release.Prefix("app")), keysOf(t, s, store.EventsPrefix("app"))
			res, err := store.Fsck(ctx, s, store.FsckOptions{App: "app", Deep: tc.deep})
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tc.want, "ROOT", root)
			if got := kinds(res.Problems); got != want {
				t.Fatalf("problems:\n%s\nwant:\n%s", got, want)
			}
			for _, p := range res.Problems {
				if p.Detail == "" || p.Repaired {
					t.Errorf("%+v: want a detail, and nothing repaired without --repair", p)
				}
			}
			if res.Clean() != (tc.want == "") {
				t.Errorf("Clean() = %v with %d problems", res.Clean(), len(res.Problems))
			}

			res, err = store.Fsck(ctx, s, store.FsckOptions{App: "app", Deep: tc.deep, Repair: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range res.Problems {
				if p.Repairable != p.Repaired {
					t.Errorf("after --repair: %+v", p)
				}
			}
			again, err := store.Fsck(ctx, s, store.FsckOptions{App: "app", Deep: tc.deep})
			if err != nil {
				t.Fatal(err)
			}
			if tc.fixed && len(again.Problems) > 0 {
				t.Errorf("after --repair, fsck still finds:\n%s", kinds(again.Problems))
			}
			// Never an artifact or an event deleted.
			if got := keysOf(t, s, release.Prefix("app")); strings.Join(got, ",") != strings.Join(artifacts, ",") {
				t.Errorf("artifacts after repair: %v, want %v", got, artifacts)
			}
			if got := keysOf(t, s, store.EventsPrefix("app")); strings.Join(got, ",") != strings.Join(events, ",") {
				t.Errorf("events after repair: %v, want %v", got, events)
			}
			if !tc.fixed {
				return
			}
			// What the repair rebuilt is what publish and history wrote.
			rels, err := store.NewIndex(s, "app").List(ctx, 0)
			if err != nil {
				t.Fatalf("list after repair: %v", err)
			}
			for _, r := range rels {
				if r.Bare || r.Subject == "" {
					t.Errorf("after repair %s is bare or lost its subject: %+v", r.Short(), r)
				}
			}
			marks, err := store.LoadMarks(ctx, s, "app")
			if err != nil {
				t.Fatal(err)
			}
			if err := marks.CheckBad(sha(2)); err == nil || !strings.Contains(err.Error(), "500s") {
				t.Errorf("after repair, %s is not BAD (500s): %v", release.Short(sha(2)), err)
			}
		})
	}
}

// TestFsckRepairKeepsLockGeneration: --repair frees a stale lock by leaving
// the tombstone a release leaves, so the next holder's generation follows
// on from the dead holder's (the local proxy refuses anything lower).
func TestFsckRepairKeepsLockGeneration(t *testing.T) {
	ctx := context.Background()
	s, root := fsckFixture(t)
	hb := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	far := time.Now().Add(time.Hour).UnixMilli() // a generation above the wall clock
	body := fmt.Sprintf(`{"token":"t","application":"app","holder":"ada","command":"oops deploy","started":%q,"heartbeat":%q,"ttl_ms":60000,"generation":%d}`, hb, hb, far)
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(store.LockKey("app"))), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Fsck(ctx, s, store.FsckOptions{App: "app", Repair: true}); err != nil {
		t.Fatal(err)
	}
	lk, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release(ctx)
	if got := lk.Generation(); got <= far {
		t.Errorf("after fsck --repair freed the lock of generation %d, the next holder has generation %d", far, got)
	}
}
