package workflow

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

func TestReleaseLock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		heartbeat time.Duration // how old grace's heartbeat is; <0: no lock
		req       ReleaseLockRequest
		removed   bool
		err       error
		why       string
	}{
		{"no lock", -1, ReleaseLockRequest{}, false, nil, ""},
		{"live holder", 0, ReleaseLockRequest{}, false, store.ErrLocked, ""},
		{"live holder, forced", 0, ReleaseLockRequest{Force: true}, true, nil, "forced"},
		{"stale holder", 2 * time.Hour, ReleaseLockRequest{}, true, nil, "its heartbeat stopped"},
		{"dry run", 2 * time.Hour, ReleaseLockRequest{DryRun: true}, false, nil, "its heartbeat stopped"},
		{"declined", 2 * time.Hour, ReleaseLockRequest{Confirm: func(*ReleaseLockOutcome) (bool, error) { return false, nil }}, false, context.Canceled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			ctx := context.Background()
			if tt.heartbeat >= 0 {
				if _, err := store.AcquireLock(ctx, fx.st, store.LockInfo{App: "api", Holder: "grace", Command: "oops deploy"}, store.LockOptions{TTL: time.Minute}); err != nil {
					t.Fatal(err)
				}
				fx.d.Now = func() time.Time { return time.Now().Add(tt.heartbeat) }
			}
			out, err := fx.runner().ReleaseLock(ctx, tt.req)
			switch {
			case tt.err == context.Canceled: // declined: any abort
				if err == nil {
					t.Fatal("a declined release went ahead")
				}
			case !errors.Is(err, tt.err):
				t.Fatalf("ReleaseLock: %v, want %v", err, tt.err)
			}
			_, _, rerr := store.ReadLock(ctx, fx.st, "api")
			if gone := errors.Is(rerr, store.ErrNotFound); gone != (tt.removed || tt.heartbeat < 0) {
				t.Errorf("lock removed = %v, want %v", gone, tt.removed)
			}
			if err == nil && tt.why != "" && (out.Holder.Holder != "grace" || !strings.Contains(out.Why, tt.why)) {
				t.Errorf("outcome %+v, want grace's lock and why %q", out, tt.why)
			}
			evs, _ := store.ListEvents(ctx, fx.st, "api", store.EventQuery{})
			if recorded := len(evs) == 1 && evs[0].Action == release.ActionLock && evs[0].Result == release.ResultOK; recorded != tt.removed {
				t.Errorf("history %+v; want a lock event: %v", evs, tt.removed)
			}
		})
	}
}
