package workflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// ReleaseLockRequest is oops lock release.
type ReleaseLockRequest struct {
	// Force removes a lock whose holder looks alive.
	Force, DryRun bool
	Reason        string
	// Confirm is asked before the lock is removed, with what was found
	// (nil: go ahead).
	Confirm func(found *ReleaseLockOutcome) (bool, error)
	// Released is told as soon as the lock is removed, before its event is
	// written (whose trouble is warned about after). Nil: nothing.
	Released func(*ReleaseLockOutcome)
}

// ReleaseLockOutcome is what oops lock release found and did.
type ReleaseLockOutcome struct {
	App string
	// Locked is false when there was no lock: nothing was done.
	Locked bool
	Holder store.LockInfo
	// Why the lock could go: the holder's heartbeat stopped, its process
	// exited, or "forced".
	Why string
}

// ReleaseLock removes the application's lock when its holder is gone (or
// with Force), recorded in history. Only the version of the lock it read
// is removed: a lock taken since is left alone.
func (r *Runner) ReleaseLock(ctx context.Context, req ReleaseLockRequest) (*ReleaseLockOutcome, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	st, err := r.d.Store(ctx)
	if err != nil {
		return nil, err
	}
	app := c.ApplicationName
	out := &ReleaseLockOutcome{App: app}
	info, etag, err := store.ReadLock(ctx, st, app)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out.Locked, out.Holder = true, info
	now := r.d.Now()
	gone, why := r.HolderGone(info, now)
	if !gone && !req.Force {
		return nil, target.Hinted(&store.LockedError{Info: info, Now: now},
			"if you are sure that holder is not changing anything: oops lock release --force")
	}
	if !gone {
		why = "forced"
	}
	out.Why = why
	if req.DryRun {
		return out, nil
	}
	if req.Confirm != nil {
		if ok, err := req.Confirm(out); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("release lock: %w", target.ErrAborted)
			}
			return nil, err
		}
	}
	reason := req.Reason
	if reason == "" {
		reason = fmt.Sprintf("released the lock of %s (%q), %s", info.Describe(), info.Command, why)
	}
	return out, r.Locked(ctx, Change{Action: release.ActionLock, Command: "oops lock release", Reason: reason, NoLock: true},
		func(ctx context.Context, _ *release.Event) error {
			if err := store.ForceReleaseLock(ctx, st, app, etag); err != nil {
				if errors.Is(err, store.ErrPrecondition) {
					return fmt.Errorf("release lock of %s: %w: it changed hands while we looked; run oops lock status", app, store.ErrLocked)
				}
				return err
			}
			if req.Released != nil {
				req.Released(out)
			}
			return nil
		})
}

// LockStatus is who holds the application's lock (`oops lock status`).
type LockStatus struct {
	App    string          `json:"application"`
	Locked bool            `json:"locked"`
	Stale  bool            `json:"stale"`
	Lock   *store.LockInfo `json:"lock,omitempty"`
}

// LockStatus reads the application's lock, without taking it.
func (r *Runner) LockStatus(ctx context.Context) (*LockStatus, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	st, err := r.d.Store(ctx)
	if err != nil {
		return nil, err
	}
	out := &LockStatus{App: c.ApplicationName}
	info, _, err := store.ReadLock(ctx, st, c.ApplicationName)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		out.Locked, out.Lock, out.Stale = true, &info, info.Stale(r.d.Now())
	}
	return out, nil
}
