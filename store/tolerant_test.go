package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// corrupt overwrites key with bytes no reader can decode.
func corrupt(t *testing.T, s store.Store, key string) {
	t.Helper()
	ctx := context.Background()
	obj, err := s.Stat(ctx, key)
	if err != nil {
		t.Fatalf("corrupt %s: %v", key, err)
	}
	if _, err := s.Replace(ctx, key, []byte(`{"releases": {"ab`), obj.ETag); err != nil {
		t.Fatalf("corrupt %s: %v", key, err)
	}
}

// seeded is a store with three published releases, a rollback from the
// newest (so marks exist) and two events.
func seeded(t *testing.T) (store.Store, *store.Index) {
	t.Helper()
	ctx := context.Background()
	s := dir.New(t.TempDir())
	x := store.NewIndex(s, "app")
	for n := 1; n <= 3; n++ {
		publish(t, x, input(n, strings.Repeat("x", n)))
	}
	// With a snapshot (index.json), as a store grows one.
	if err := x.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	for i, ev := range []release.Event{
		{App: "app", Action: release.ActionDeploy, Result: release.ResultOK, Time: t0, To: release.Side{Color: release.Blue, Commit: sha(3)}},
		{App: "app", Action: release.ActionRollback, Result: release.ResultOK, Reason: "500s", Time: t0.Add(time.Minute),
			From: release.Side{Color: release.Blue, Commit: sha(3)}, To: release.Side{Color: release.Green, Commit: sha(2)}},
	} {
		if err := store.AppendEvent(ctx, s, &ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if err := store.UpdateMarks(ctx, s, "app", func(m store.Marks) { m.ApplyEvent(&ev) }); err != nil {
			t.Fatal(err)
		}
	}
	return s, x
}

func firstEventKey(t *testing.T, s store.Store) string {
	t.Helper()
	var key string
	_ = s.List(context.Background(), store.EventsPrefix("app"), store.ListOptions{Limit: 1}, func(o store.Object) error {
		key = o.Key
		return store.ErrStop
	})
	return key
}

// TestCorruptObjectsAreNamed: every reader of bookkeeping names an object
// it cannot decode with a *store.CorruptError carrying its key.
func TestCorruptObjectsAreNamed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  func(store.Store) string
		read func(store.Store, *store.Index) error
	}{
		{"marks", func(store.Store) string { return store.MarksKey("app") }, func(s store.Store, _ *store.Index) error {
			_, err := store.LoadMarks(context.Background(), s, "app")
			return err
		}},
		{"index", func(store.Store) string { return store.IndexKey("app") }, func(_ store.Store, x *store.Index) error {
			_, err := x.List(context.Background(), 0)
			return err
		}},
		{"release metadata", func(store.Store) string { return store.ReleaseMetaKey("app", sha(2)) }, func(_ store.Store, x *store.Index) error {
			_, err := x.Get(context.Background(), sha(2))
			return err
		}},
		{"event", nil, func(s store.Store, _ *store.Index) error {
			_, err := store.ListEvents(context.Background(), s, "app", store.EventQuery{})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, x := seeded(t)
			key := ""
			if tt.key != nil {
				key = tt.key(s)
			} else {
				key = firstEventKey(t, s)
			}
			corrupt(t, s, key)
			err := tt.read(s, x)
			var ce *store.CorruptError
			if !errors.As(err, &ce) || ce.Key != key || !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("got %v, want a *CorruptError naming %s", err, key)
			}
		})
	}
}

// TestReadersReadAround: with OnCorrupt set, readers report the object
// once and go on with what can be read.
func TestReadersReadAround(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("list without the index reads each release's metadata", func(t *testing.T) {
		t.Parallel()
		s, x := seeded(t)
		corrupt(t, s, store.IndexKey("app"))
		corrupt(t, s, store.ReleaseMetaKey("app", sha(1)))
		var seen []string
		x.OnCorrupt = func(ce *store.CorruptError, _ string) { seen = append(seen, ce.Key) }
		rels := list(t, x, 0)
		byCommit := map[string]release.Release{}
		for _, r := range rels {
			byCommit[r.Commit] = r
		}
		if len(rels) != 3 || len(byCommit) != 3 {
			t.Fatalf("listed %s, want all three", commits(rels))
		}
		// Bare: published when its artifact was written (now), so first.
		if r := byCommit[sha(3)]; r.Bare || r.Subject != "change 3" || !byCommit[sha(1)].Bare {
			t.Errorf("releases %+v: want metadata where it can be read, bare where not", rels)
		}
		if strings.Join(seen, " ") != store.IndexKey("app")+" "+store.ReleaseMetaKey("app", sha(1)) {
			t.Errorf("reported %v", seen)
		}
	})

	t.Run("publish with a corrupt index publishes and leaves the index", func(t *testing.T) {
		t.Parallel()
		s, x := seeded(t)
		corrupt(t, s, store.IndexKey("app"))
		var told []string
		x.OnCorrupt = func(ce *store.CorruptError, _ string) { told = append(told, ce.Key) }
		// Publish does not read the snapshot at all.
		r, created := publish(t, x, input(4, "four"))
		if created != store.Created || r.Commit != sha(4) || len(told) != 0 {
			t.Fatalf("publish: created=%v %+v, told of %v", created, r, told)
		}
		rc, _, _ := s.Get(ctx, store.IndexKey("app"))
		data := new(bytes.Buffer)
		_, _ = data.ReadFrom(rc)
		rc.Close()
		if data.String() != `{"releases": {"ab` {
			t.Errorf("the index was rewritten: %q", data)
		}
		if rels := list(t, x, 1); rels[0].Commit != sha(4) || rels[0].Bare {
			t.Errorf("list shows %+v first, want the new release with its metadata", rels[0])
		}
		if _, _, err := x.Publish(ctx, input(4, "four")); err != nil {
			t.Errorf("publishing the same bytes again: %v", err)
		}
	})

	t.Run("publish again repairs corrupt release metadata", func(t *testing.T) {
		t.Parallel()
		s, x := seeded(t)
		corrupt(t, s, store.ReleaseMetaKey("app", sha(2)))
		x.OnCorrupt = func(*store.CorruptError, string) {}
		if _, outcome := publish(t, x, input(2, "xx")); outcome != store.Recorded {
			t.Errorf("outcome %d, want Recorded (metadata rewritten, artifact not created again)", outcome)
		}
		x.OnCorrupt = nil
		if r, err := x.Get(ctx, sha(2)); err != nil || r.Bare {
			t.Errorf("after publishing again: %+v, %v; want its metadata back", r, err)
		}
	})

	t.Run("history leaves out a corrupt event", func(t *testing.T) {
		t.Parallel()
		s, _ := seeded(t)
		key := firstEventKey(t, s)
		corrupt(t, s, key)
		var seen []string
		evs, err := store.ListEvents(ctx, s, "app", store.EventQuery{OnCorrupt: func(ce *store.CorruptError) { seen = append(seen, ce.Key) }})
		if err != nil || len(evs) != 1 || evs[0].Action != release.ActionDeploy {
			t.Fatalf("events %+v, %v: want the deploy only", evs, err)
		}
		if len(seen) != 1 || seen[0] != key {
			t.Errorf("reported %v, want %s", seen, key)
		}
	})

	t.Run("corrupt marks are not overwritten", func(t *testing.T) {
		t.Parallel()
		s, _ := seeded(t)
		corrupt(t, s, store.MarksKey("app"))
		err := store.UpdateMarks(ctx, s, "app", func(m store.Marks) { m[sha(1)] = store.Mark{Bad: true} })
		var ce *store.CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("UpdateMarks over corrupt marks: %v, want a *CorruptError", err)
		}
		evs, _ := store.ListEvents(ctx, s, "app", store.EventQuery{})
		if m := store.MarksFromEvents(evs); m.CheckBad(sha(3)) == nil || m.CheckBad(sha(2)) != nil {
			t.Errorf("marks from history %+v: want %s BAD, %s not", m, release.Short(sha(3)), release.Short(sha(2)))
		}
	})
}

// TestPutEventStoresOnce: a spooled event appended twice (a retry after a
// crash) is in history once.
func TestPutEventStoresOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newMem()
	ev := release.Event{App: "app", Action: release.ActionRollback, Result: release.ResultOK, Time: t0}
	ev.ID = store.NewEventID("app", ev.Time)
	for i, want := range []bool{true, false} {
		created, err := store.PutEvent(ctx, s, &ev)
		if err != nil || created != want {
			t.Fatalf("put %d: created=%v err=%v, want %v", i, created, err, want)
		}
	}
	evs, err := store.ListEvents(ctx, s, "app", store.EventQuery{})
	if err != nil || len(evs) != 1 || evs[0].ID != ev.ID || !evs[0].Time.Equal(t0) {
		t.Fatalf("history %+v, %v: want the one event, at its own time", evs, err)
	}
}

// TestApplyLateEvent: an event appended late changes no mark that a later
// event set.
func TestApplyLateEvent(t *testing.T) {
	t.Parallel()
	rollback := release.Event{Action: release.ActionRollback, Result: release.ResultOK, Time: t0,
		From: release.Side{Commit: sha(1)}, To: release.Side{Commit: sha(2)}}
	tests := []struct {
		name    string
		marks   store.Marks
		wantBad bool
	}{
		{"nothing later", store.Marks{}, true},
		{"deployed again later", store.Marks{sha(1): {LiveAt: t0.Add(time.Hour)}}, false},
		{"known from before", store.Marks{sha(1): {LiveAt: t0.Add(-time.Hour)}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.marks.ApplyLateEvent(&rollback)
			if bad := tt.marks.CheckBad(sha(1)) != nil; bad != tt.wantBad {
				t.Errorf("BAD = %v, want %v", bad, tt.wantBad)
			}
		})
	}
}
