package workflow

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// Change describes a command that changes traffic or the index.
type Change struct {
	// Action is recorded in history (release.ActionRollback, ...).
	Action string
	// Command is what the lock says the holder is doing, e.g. "oops rollback".
	Command string
	Reason  string
	DryRun  bool
	// NoLock records the event without taking the lock: for commands that
	// manage the lock themselves (oops lock release) and for publish, which
	// only adds immutable objects (an upload must not hold up a rollback).
	NoLock bool
	// WithoutLock is rollback --no-lock: run without the lock when, and
	// only when, the store cannot be reached; the event waits in a local
	// spool (spool.go).
	WithoutLock bool
	// NoLockOffer is the command offered when the lock cannot be taken
	// because the store cannot be reached ("" : none).
	NoLockOffer string
}

// commandName is what the lock records for the command.
func (c Change) commandName() string {
	if c.Command != "" {
		return c.Command
	}
	return "oops " + c.Action
}

// Locked runs fn under the application's lock and records its outcome as an
// event, whatever the outcome: ok, failed, or refused. fn fills in the
// event's from/to/target as it learns them. Dry runs take no lock and
// record nothing.
//
// The lock is released however fn ends: success, error, or interrupt (the
// context is cancelled on SIGINT and SIGTERM, and fn returns). If the lock
// is lost while fn runs (taken over as stale), fn's context is cancelled.
// fn's context carries the lock's fence (target.WithFence) and its token
// for the processes backends start (target.WithChildEnv): fn must use it,
// never a context from outside, for every step that changes something.
//
// Every command that changes traffic or state goes through here.
func (r *Runner) Locked(ctx context.Context, ch Change, fn func(ctx context.Context, ev *release.Event) error) error {
	c, err := r.d.Config()
	if err != nil {
		return err
	}
	ev := &release.Event{Time: r.d.Now().UTC(), Action: ch.Action, App: c.ApplicationName, Reason: ch.Reason}
	if ch.DryRun {
		return fn(ctx, ev)
	}
	ttl := lockTTL(c)
	st, err := r.d.Store(ctx)
	if err != nil {
		return err
	}
	// The lock names the local identity; the event waits for the AWS one.
	id, finalID := r.IdentityAsync(ctx)
	ev.Who, ev.OSUser, ev.Host = id.Who, id.OSUser, id.Host
	start := time.Now()
	if ch.WithoutLock {
		return r.withoutLock(ctx, st, ch, id, ttl, ev, start, finalID, fn)
	}

	var lk *store.Lock
	var runErr error
	if !ch.NoLock {
		var takeover string
		// The lock writes to the store as it is: its heartbeats and lease
		// renewals are what the fence asks, so they must not be fenced.
		raw, err := r.d.RawStore(ctx)
		if err != nil {
			return err
		}
		lk, takeover, runErr = r.takeLock(ctx, raw, c, ch, id, ttl)
		runErr = unreachable(ctx, st, ch, runErr)
		if takeover != "" {
			// The previous holder died without a word: history says so.
			tev := *ev
			tev.Time, tev.Action, tev.Result, tev.Reason = r.d.Now().UTC(), release.ActionLock, release.ResultOK, takeover
			defer r.recordAside(ctx, st, &tev, "the lock takeover")()
		}
	}
	if runErr == nil {
		r.FlushSpool(ctx, st) // the store is reached: history gets what waited
		runErr = r.runLocked(ctx, st, lk, ev, fn)
	} else {
		r.onFailure(ctx, ev, runErr) // refused before it began: no lock to lend
	}
	finishEvent(ev, start, finalID, runErr)
	r.record(ctx, st, lk, ev, runErr)
	return runErr
}

// recordAside notifies of and records an event beside the command's own
// (a lock takeover) while the command goes on; what it returns waits for
// that to be done.
func (r *Runner) recordAside(ctx context.Context, st store.Store, ev *release.Event, what string) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.setNotified(ev, r.notify(ctx, ev))
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := store.AppendEvent(wctx, st, ev); err != nil {
			r.warnf("could not record %s in history: %v", what, err)
		}
	}()
	return func() { <-done }
}

// setNotified records in ev the destinations that did not take it.
func (r *Runner) setNotified(ev *release.Event, failed []string) {
	if len(failed) > 0 {
		ev.NotifyFailed = &failed
	}
}

// runLocked runs fn with the lock's fence and token in its context, and
// settles what a lost lease makes of its outcome.
func (r *Runner) runLocked(ctx context.Context, st store.Store, lk *store.Lock, ev *release.Event, fn func(context.Context, *release.Event) error) error {
	runCtx, stop := ctx, func() {}
	if lk != nil && !lk.Shared() {
		runCtx = target.WithChildEnv(runCtx, LockTokenEnv+"="+lk.Info().Token)
		runCtx, stop = cancelOnLoss(runCtx, lk)
	}
	if lk != nil {
		// Every mutating step below checks the lease (target.CheckFence),
		// a hook's too: it acts for its holder, with its generation.
		runCtx = target.WithFence(runCtx, lk)
	}
	runErr := fn(runCtx, ev)
	stop()
	if lk != nil {
		runErr = r.settleLease(ctx, st, lk, runErr)
	}
	// Still under the lock, with its token: the hook may run oops.
	r.onFailure(runCtx, ev, runErr)
	return runErr
}

// record writes the event and the release marks and releases the lock,
// even when interrupted: the caller's context may be cancelled, so these
// get their own deadline.
func (r *Runner) record(ctx context.Context, st store.Store, lk *store.Lock, ev *release.Event, runErr error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// The event needs no lock, so it is written alongside; the marks are
	// updated before the lock goes, so the next holder sees them.
	recorded := make(chan error, 1)
	evc := *ev
	go func() {
		var ue *unreachableError
		if errors.As(runErr, &ue) {
			evc.Result = release.ResultRefused // as recordEvent records it
		}
		// Told first, so that history says who was not told: no longer
		// than notify-timeout, while the marks and the lock are seen to.
		// The write has its own deadline after that.
		r.setNotified(&evc, r.notify(ctx, &evc))
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		recorded <- r.recordEvent(ectx, st, &evc, runErr)
	}()
	if ev.Result == release.ResultOK && store.ChangesMarks(ev) && (lk == nil || lk.Check(wctx) == nil) {
		if err := store.UpdateMarks(wctx, st, ev.App, func(m store.Marks) { m.ApplyEvent(ev) }); err != nil {
			r.WarnMarks(err)
		}
	}
	if lk != nil {
		if err := lk.Release(wctx); err != nil && !errors.Is(runErr, store.ErrLockLost) {
			r.warnf("%v (check with: oops lock status)", err)
		}
	}
	if err := <-recorded; err != nil {
		r.warnf("could not record this %s in history: %v", ev.Action, err)
	}
}

// settleLease makes a lost lock what the command reports. A holder that
// lost it cannot vouch for what it saw (the state it reports, a refusal it
// made): it may be the new holder's work, so its lease is checked once
// more even when fn succeeded. A hook's borrowed lease is its holder's to
// check.
func (r *Runner) settleLease(ctx context.Context, st store.Store, lk *store.Lock, runErr error) error {
	if !lk.Shared() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		cerr := lk.Check(cctx)
		cancel()
		if cerr != nil && runErr == nil {
			// It had finished: no "stopped before acting further".
			cerr = nameTakeover(ctx, st, lk, cerr)
			return target.Hinted(fmt.Errorf("%w; what this command saw may be another operator's doing", cerr), "see what is live now: oops status; oops history")
		}
	}
	return lostLockError(ctx, st, lk, runErr)
}

// finishEvent fills in how the command ended.
func finishEvent(ev *release.Event, start time.Time, finalID func() Identity, runErr error) {
	ev.DurationMS = time.Since(start).Milliseconds()
	ev.Who = finalID().Who
	ev.Result = ResultOf(runErr)
	if runErr != nil {
		ev.Error = runErr.Error()
	}
}

// takeLock takes the application's lock for this command, or borrows it
// when this oops runs inside the holder's hook.
// It also describes a takeover of a dead holder's lock, if there was one.
func (r *Runner) takeLock(ctx context.Context, st store.Store, c *config.Config, ch Change, id Identity, ttl time.Duration) (*store.Lock, string, error) {
	command := ch.commandName()
	var takeover string
	info := store.LockInfo{App: c.ApplicationName, Holder: id.Who, OSUser: id.OSUser, Host: id.Host, PID: os.Getpid(), PIDNS: pidNamespace(), Command: command}
	lk, err := store.AcquireLock(ctx, st, info, store.LockOptions{
		Now:   r.d.Now,
		TTL:   ttl,
		Wait:  r.d.LockWait(),
		Token: r.d.Getenv(LockTokenEnv),
		Gone:  func(h store.LockInfo) (bool, string) { return r.HolderExited(h) },
		OnTakeover: func(prev store.LockInfo, why string) {
			r.warnf("taking over the lock of %s from %s (%q): %s", c.ApplicationName, prev.Describe(), prev.Command, why)
			takeover = fmt.Sprintf("%s"+tookOver+"%s (%q, since %s): %s", command, prev.Describe(), prev.Command,
				prev.Started.UTC().Format(time.RFC3339), why)
		},
		OnWait: func(h store.LockInfo) {
			r.warnf("waiting up to %s for the lock of %s, held by %s (%q)", r.d.LockWait(), c.ApplicationName, h.Describe(), h.Command)
		},
		OnHeartbeatError: func(err error) { r.warnf("could not refresh the lock: %v", err) },
	})
	var le *store.LockedError
	if errors.As(err, &le) {
		return nil, "", target.Hinted(err, LockedHint(le.Info))
	}
	return lk, takeover, err
}

// LockedHint is the way through a lock held by holder.
func LockedHint(holder store.LockInfo) string {
	return fmt.Sprintf("wait for it with --lock-wait 5m; a holder that died loses the lock %s after its last heartbeat; to remove it now: oops lock release --force", holder.TTL())
}

// LockRefusal is the refusal Locked would meet now with the lock as read
// (nil: it would take the lock, take it over, or share it).
func (r *Runner) LockRefusal(cur store.LockInfo) error {
	if cur.Released || (cur.Token != "" && cur.Token == r.d.Getenv(LockTokenEnv)) || cur.Stale(r.d.Now()) {
		return nil
	}
	if gone, _ := r.HolderExited(cur); gone {
		return nil
	}
	return target.Hinted(&store.LockedError{Info: cur, Now: r.d.Now()}, LockedHint(cur))
}

// lostLockError makes a lost lock the reason fn failed, whatever fn saw
// (often just its context cancelled by cancelOnLoss, or a refusal by the
// proxy's fence): the operator must hear "lost the lock to bob", with
// exit 5, not "interrupted".
func lostLockError(ctx context.Context, st store.Store, lk *store.Lock, err error) error {
	if err == nil {
		return nil
	}
	lost := lk.Err()
	var le *store.LockLostError
	if lost == nil && errors.As(err, &le) {
		lost = le
	}
	if lost == nil && errors.Is(err, target.ErrFenced) {
		// The proxy knew before our heartbeat did: say who has the lock.
		key := store.LockKey(lk.Info().App)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		cur, _, rerr := store.ReadLock(rctx, st, lk.Info().App)
		cancel()
		if rerr == nil && cur.Token != lk.Info().Token {
			lost = &store.LockLostError{Key: key, By: &cur}
		}
	}
	if lost == nil {
		return err
	}
	// Lead with the loss, and whom to: the step that noticed it follows.
	return fmt.Errorf("%w; stopped before acting further (%v)", nameTakeover(ctx, st, lk, lost), err)
}

// tookOver joins the two holders in the history event of a takeover.
const tookOver = " took over the lock from "

// nameTakeover names who took the lock over when the lock itself no longer
// says (that holder has released it since): the takeover is in history.
func nameTakeover(ctx context.Context, st store.Store, lk *store.Lock, lost error) error {
	var le *store.LockLostError
	if !errors.As(lost, &le) || (le.By != nil && !le.By.Released) {
		return lost
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	info := lk.Info()
	evs, err := store.ListEvents(rctx, st, info.App, store.EventQuery{Limit: 20, OnCorrupt: func(*store.CorruptError) {}})
	if err != nil {
		return lost
	}
	for _, ev := range evs { // newest first
		if ev.Action == release.ActionLock && ev.Result == release.ResultOK && ev.Time.After(info.Started) &&
			strings.Contains(ev.Reason, tookOver) {
			cmd, _, _ := strings.Cut(ev.Reason, tookOver)
			return fmt.Errorf("lost the lock to %s (%q, took it over at %s and has released it since): %w",
				ev.Who, cmd, ev.Time.Local().Format("15:04:05"), store.ErrLockLost)
		}
	}
	return lost
}

// cancelOnLoss derives a context that is cancelled if the lock is lost.
func cancelOnLoss(ctx context.Context, lk *store.Lock) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-lk.Lost():
			cancel(lk.Err())
		case <-done:
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// lockTTL is lock-ttl from .oopsrc (parsed when it loaded), or the default.
func lockTTL(c *config.Config) time.Duration {
	if d := c.Values.LockTTL; d > 0 {
		return d
	}
	return store.DefaultLockTTL
}
