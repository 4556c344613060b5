package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

// RunHistory checks what history, the lock and release marks need of a
// backend: events from concurrent writers are all kept and listed newest
// first, the lock has exactly one holder, a stale one is taken over by
// exactly one contender, and the old holder notices. open returns a new,
// empty store for each subtest (subtests run in parallel).
func RunHistory(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Fence", func(t *testing.T) { RunFence(t, open) })
	t.Run("EventsNewestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
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
		ctx := ctx(t)
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
		ctx := ctx(t)
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
		ctx := ctx(t)
		const n = 8
		var mu sync.Mutex
		var winners []*store.Lock
		var takeovers []string
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				l, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: fmt.Sprint(i)}, store.LockOptions{TTL: time.Minute,
					OnTakeover: func(p store.LockInfo, _ string) {
						mu.Lock()
						defer mu.Unlock()
						takeovers = append(takeovers, fmt.Sprintf("%d took over from %+v", i, p))
					}})
				if err == nil {
					mu.Lock()
					winners = append(winners, l)
					mu.Unlock()
				} else if !errors.Is(err, store.ErrLocked) {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 {
			var who []string
			for _, w := range winners {
				who = append(who, w.Info().Holder)
			}
			t.Fatalf("%d contenders got the lock (%v), want exactly 1; takeovers: %v", len(winners), who, takeovers)
		}
		_ = winners[0].Release(ctx)
	})
	t.Run("WaitThenAcquire", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice"}, store.LockOptions{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		// alice lets go only once bob says he is waiting.
		waiting := make(chan store.LockInfo, 1)
		go func() {
			select {
			case <-waiting:
			case <-time.After(20 * time.Second):
			}
			_ = a.Release(ctx)
		}()
		b, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{TTL: time.Minute, Wait: 30 * time.Second, Poll: 50 * time.Millisecond,
			OnWait: func(h store.LockInfo) { waiting <- h }})
		if err != nil {
			t.Fatalf("waiting acquire: %v", err)
		}
		if b.Info().Holder != "bob" {
			t.Fatalf("holder %q", b.Info().Holder)
		}
		_ = b.Release(ctx)
	})
	t.Run("StaleTakeoverAndLoss", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
		ttl := time.Second
		// alice never heartbeats: her clock says she took the lock long ago.
		old := func() time.Time { return time.Now().Add(-time.Hour) }
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice"}, store.LockOptions{TTL: ttl, Now: old})
		if err != nil {
			t.Fatal(err)
		}
		var prev store.LockInfo
		b, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{TTL: ttl, OnTakeover: func(p store.LockInfo, _ string) { prev = p }})
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
	t.Run("GoneHolderTakenOverEarly", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice", Host: "h1", PID: 41}, store.LockOptions{TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx)
		alive := func(store.LockInfo) (bool, string) { return false, "" }
		if _, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{Gone: alive}); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("live holder's lock: %v, want ErrLocked", err)
		}
		var why string
		dead := func(h store.LockInfo) (bool, string) { return h.PID == 41, "process 41 has exited" }
		b, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{Gone: dead, OnTakeover: func(_ store.LockInfo, w string) { why = w }})
		if err != nil {
			t.Fatalf("lock of a holder known to be gone: %v", err)
		}
		if why != "process 41 has exited" {
			t.Errorf("takeover reason %q", why)
		}
		_ = b.Release(ctx)
	})
	t.Run("SharedWithToken", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
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
		ctx := ctx(t)
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
