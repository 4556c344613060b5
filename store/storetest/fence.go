package storetest

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/store"
)

// RunFence checks the lock as a lease and a fencing token on a backend: a
// holder whose lease went stale must not act once someone took over (even
// before its heartbeat noticed), may act again after renewing when nobody
// did, and every holding gets a higher generation than the one before,
// across releases, takeovers and forced releases.
func RunFence(t *testing.T, open func(t *testing.T) store.Store) {
	// skewed is a wall clock that a test can move forward, as a process
	// that was stopped finds it when it resumes.
	skewed := func() (func() time.Time, *atomic.Int64) {
		var off atomic.Int64
		return func() time.Time { return time.Now().Add(time.Duration(off.Load())) }, &off
	}
	t.Run("StalledHolderLosesBeforeItsHeartbeatNotices", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
		// A long TTL: alice's heartbeat goroutine will not run during the
		// test, so only Check can find out that bob took over.
		ttl := time.Hour
		now, off := skewed()
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice", Command: "oops rollback"}, store.LockOptions{TTL: ttl, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Check(ctx); err != nil {
			t.Fatalf("fresh lease: %v", err)
		}
		// alice is stopped for two TTLs; bob's clock agrees and takes over.
		off.Store(int64(2 * ttl))
		later := func() time.Time { return time.Now().Add(2 * ttl) }
		b, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob", Command: "oops deploy"}, store.LockOptions{TTL: ttl, Now: later})
		if err != nil {
			t.Fatalf("takeover: %v", err)
		}
		defer b.Release(ctx)
		err = a.Check(ctx)
		var lost *store.LockLostError
		if !errors.As(err, &lost) || !errors.Is(err, store.ErrLockLost) {
			t.Fatalf("resumed holder's Check: %v, want a LockLostError", err)
		}
		if !strings.Contains(err.Error(), "bob") || !strings.Contains(err.Error(), "oops deploy") {
			t.Fatalf("Check error %q does not name the new holder", err)
		}
		if b.Generation() <= a.Generation() {
			t.Fatalf("takeover generation %d not above %d", b.Generation(), a.Generation())
		}
		// bob's lock is untouched by alice's attempt to renew.
		cur, _, err := store.ReadLock(ctx, s, "app")
		if err != nil || cur.Holder != "bob" {
			t.Fatalf("lock after alice's check: %+v, %v", cur, err)
		}
		if err := b.Check(ctx); err != nil {
			t.Fatalf("new holder's Check: %v", err)
		}
	})
	t.Run("StalledHolderRenewsWhenNobodyTookOver", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
		ttl := time.Hour
		now, off := skewed()
		a, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "alice"}, store.LockOptions{TTL: ttl, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx)
		before := a.Info().Heartbeat
		off.Store(int64(ttl)) // past the margin (TTL/2), nobody took over
		if err := a.Check(ctx); err != nil {
			t.Fatalf("Check after a stall nobody used: %v", err)
		}
		cur, _, err := store.ReadLock(ctx, s, "app")
		if err != nil || !cur.Heartbeat.After(before) {
			t.Fatalf("Check did not renew the lease: heartbeat %v, was %v (%v)", cur.Heartbeat, before, err)
		}
	})
	t.Run("GenerationOnlyGrows", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := ctx(t)
		var gens []int64
		take := func(opts store.LockOptions) *store.Lock {
			t.Helper()
			l, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "h"}, opts)
			if err != nil {
				t.Fatal(err)
			}
			gens = append(gens, l.Generation())
			return l
		}
		// A clock that runs backwards must not make generations repeat.
		back := func() time.Time { return time.Now().Add(-24 * time.Hour) }
		l := take(store.LockOptions{TTL: time.Hour})
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.ReadLock(ctx, s, "app"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("released lock reads as %v, want ErrNotFound", err)
		}
		l = take(store.LockOptions{TTL: time.Hour, Now: back})
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		l = take(store.LockOptions{TTL: time.Second, Now: back})
		// A takeover of a stale holder.
		l2 := take(store.LockOptions{TTL: time.Hour})
		_ = l.Release(ctx)
		if err := store.ForceReleaseLock(ctx, s, "app", ""); err != nil {
			t.Fatal(err)
		}
		l3 := take(store.LockOptions{TTL: time.Hour, Now: back})
		if err := l2.Release(ctx); !errors.Is(err, store.ErrLockLost) {
			t.Fatalf("release by a force-released holder: %v, want ErrLockLost", err)
		}
		if err := l3.Release(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(gens); i++ {
			if gens[i] <= gens[i-1] {
				t.Fatalf("generations %v do not grow", gens)
			}
		}
	})
}
