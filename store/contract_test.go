package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

// These are the history/lock contract tests, run here against memStore.

func TestMemHistoryContract(t *testing.T) {
	t.Parallel()
	HistoryContract(t, func(*testing.T) store.Store { return newMem() })
}

// HistoryContract checks events, locks and marks on a fresh store.
func HistoryContract(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("EventsNewestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
		for i := range 5 {
			ev := &release.Event{App: "app", Time: base.Add(time.Duration(i) * time.Second), Action: release.ActionSwitch, Result: release.ResultOK, Reason: fmt.Sprint(i)}
			if err := store.AppendEvent(ctx, s, ev); err != nil {
				t.Fatal(err)
			}
		}
		// Another application's events are not listed.
		if err := store.AppendEvent(ctx, s, &release.Event{App: "other", Action: "deploy", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		got, err := store.ListEvents(ctx, s, "app", store.EventQuery{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"4", "3", "2"}; reasons(got) != fmt.Sprint(want) {
			t.Fatalf("got reasons %v, want %v (newest first)", reasons(got), want)
		}
		more, err := store.ListEvents(ctx, s, "app", store.EventQuery{Limit: 10, Before: got[2].ID})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"1", "0"}; reasons(more) != fmt.Sprint(want) {
			t.Fatalf("page after %s: got %v, want %v", got[2].ID, reasons(more), want)
		}
	})
	t.Run("ConcurrentWritersAllKept", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		same := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) // same instant on purpose
		const writers, each = 8, 5
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					ev := &release.Event{App: "app", Time: same, Action: release.ActionRollback, Result: release.ResultOK, Reason: fmt.Sprintf("%d/%d", w, i)}
					errs <- store.AppendEvent(ctx, s, ev)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := store.ListEvents(ctx, s, "app", store.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, ev := range got {
			seen[ev.Reason] = true
		}
		if len(got) != writers*each || len(seen) != writers*each {
			t.Fatalf("kept %d events (%d distinct), want %d", len(got), len(seen), writers*each)
		}
	})
	t.Run("LockExclusive", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice", Host: "h1", PID: 1, Command: "oops rollback"}, store.LockOptions{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob", Host: "h2", PID: 2, Command: "oops deploy"}, store.LockOptions{TTL: time.Minute})
		var le *store.LockedError
		if !errors.As(err, &le) || !errors.Is(err, store.ErrLocked) {
			t.Fatalf("second acquire: got %v, want a LockedError", err)
		}
		if le.Info.Holder != "alice" || le.Info.Command != "oops rollback" {
			t.Fatalf("error names %+v, want alice running oops rollback", le.Info)
		}
		// Another application is not affected.
		o, err := store.AcquireLock(ctx, s, store.LockInfo{App: "other", Holder: "bob"}, store.LockOptions{})
		if err != nil {
			t.Fatalf("lock of another app: %v", err)
		}
		if err := o.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.ReadLock(ctx, s, "app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after release: %v, want not found", err)
		}
		b, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{})
		if err != nil {
			t.Fatalf("acquire after release: %v", err)
		}
		_ = b.Release(ctx)
	})
	t.Run("ContendedAcquireOneWinner", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		const n = 8
		var mu sync.Mutex
		var winners []*store.Lock
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				l, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: fmt.Sprint(i)}, store.LockOptions{TTL: time.Minute})
				if err == nil {
					mu.Lock()
					winners = append(winners, l)
					mu.Unlock()
				} else if !errors.Is(err, store.ErrLocked) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%d contenders got the lock, want exactly 1", len(winners))
		}
		_ = winners[0].Release(ctx)
	})
	t.Run("WaitThenAcquire", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice"}, store.LockOptions{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(300*time.Millisecond, func() { _ = a.Release(ctx) })
		waited := false
		b, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{TTL: time.Minute, Wait: 20 * time.Second, Poll: 50 * time.Millisecond, OnWait: func(store.LockInfo) { waited = true }})
		if err != nil {
			t.Fatalf("waiting acquire: %v", err)
		}
		if !waited {
			t.Error("OnWait was not called while the lock was held")
		}
		if b.Info().Holder != "bob" {
			t.Fatalf("holder %q", b.Info().Holder)
		}
		_ = b.Release(ctx)
	})
	t.Run("StaleTakeoverAndLoss", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		ttl := 400 * time.Millisecond
		// alice never heartbeats: her clock says she took the lock long ago.
		old := func() time.Time { return time.Now().Add(-time.Hour) }
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice"}, store.LockOptions{TTL: ttl, Now: old})
		if err != nil {
			t.Fatal(err)
		}
		var prev store.LockInfo
		b, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{TTL: ttl, OnTakeover: func(p store.LockInfo) { prev = p }})
		if err != nil {
			t.Fatalf("takeover of a stale lock: %v", err)
		}
		if prev.Holder != "alice" {
			t.Fatalf("takeover reported %q, want alice", prev.Holder)
		}
		// alice's next heartbeat finds the lock changed: she lost it.
		select {
		case <-a.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("old holder did not notice the takeover")
		}
		if err := a.Release(ctx); !errors.Is(err, store.ErrLockLost) {
			t.Fatalf("old holder release: %v, want ErrLockLost", err)
		}
		// ... and her release did not remove bob's lock.
		cur, _, err := store.ReadLock(ctx, s, "app")
		if err != nil || cur.Holder != "bob" {
			t.Fatalf("lock after old holder's release: %+v, %v; want bob's", cur, err)
		}
		// bob's heartbeat keeps a live lock from going stale.
		time.Sleep(2 * ttl)
		if _, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "carol"}, store.LockOptions{TTL: ttl}); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("heartbeating lock taken: %v", err)
		}
		if err := b.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("SharedWithToken", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice"}, store.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hook, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice"}, store.LockOptions{Token: a.Info().Token})
		if err != nil {
			t.Fatalf("hook with the holder's token: %v", err)
		}
		if !hook.Shared() {
			t.Fatal("hook's lock is not shared")
		}
		if err := hook.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.ReadLock(ctx, s, "app"); err != nil {
			t.Fatalf("hook's release removed the holder's lock: %v", err)
		}
		if _, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app"}, store.LockOptions{Token: "wrong"}); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("wrong token: %v, want ErrLocked", err)
		}
		_ = a.Release(ctx)
	})
	t.Run("MarksConcurrentUpdates", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				sha := fmt.Sprintf("%040d", i)
				err := store.UpdateMarks(ctx, s, "app", func(m store.Marks) {
					m.ApplyEvent(&release.Event{Action: release.ActionRollback, Result: release.ResultOK, From: release.Side{Commit: sha}, To: release.Side{Commit: "x"}, Reason: "broke " + sha})
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		m, err := store.LoadMarks(ctx, s, "app")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			sha := fmt.Sprintf("%040d", i)
			if !m[sha].Bad || m[sha].BadReason != "broke "+sha {
				t.Errorf("mark of %s lost: %+v", sha, m[sha])
			}
		}
	})
}

func reasons(evs []release.Event) string {
	var r []string
	for _, e := range evs {
		r = append(r, e.Reason)
	}
	return fmt.Sprint(r)
}
