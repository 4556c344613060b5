package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// TestLockTTLFloor: a lock-ttl of a few nanoseconds (which .oopsrc
// refuses, but AcquireLock is also a library call) neither panics the
// heartbeat (a ticker of ttl/4 = 0) nor makes a lock anyone may take over
// at once: it is raised to store.MinLockTTL.
func TestLockTTLFloor(t *testing.T) {
	t.Parallel()
	for _, ttl := range []time.Duration{time.Nanosecond, 3 * time.Nanosecond, time.Millisecond} {
		t.Run(ttl.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := dir.New(t.TempDir())
			lk, err := store.AcquireLock(ctx, s, store.LockInfo{App: "api", Holder: "ada"}, store.LockOptions{TTL: ttl})
			if err != nil {
				t.Fatal(err)
			}
			defer lk.Release(ctx)
			info := lk.Info()
			if got := info.TTL(); got < store.MinLockTTL {
				t.Errorf("lock-ttl %s recorded as %s, want at least %s", ttl, got, store.MinLockTTL)
			}
			time.Sleep(20 * time.Millisecond)
			if _, err := store.AcquireLock(ctx, s, store.LockInfo{App: "api", Holder: "bob"}, store.LockOptions{TTL: ttl}); err == nil {
				t.Error("bob took a lock whose holder is alive")
			}
		})
	}
}
