package cmd

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

// LockTokenEnv is exported to everything a mutating command starts (hooks,
// deploy scripts): an oops started with the token of the current lock runs
// under that lock instead of waiting for it.
const LockTokenEnv = "OOPS_LOCK_TOKEN"

// mutateOptions describe a command that changes traffic or the index.
type mutateOptions struct {
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
func (o mutateOptions) commandName() string {
	if o.Command != "" {
		return o.Command
	}
	return "oops " + o.Action
}

// mutate runs fn under the application's lock and records its outcome as an
// event, whatever the outcome: ok, failed, or refused. fn fills in the
// event's from/to/target as it learns them. Dry runs take no lock and
// record nothing.
//
// The lock is released however fn ends: success, error, or interrupt (the
// context from Main is cancelled on SIGINT and SIGTERM, and fn returns).
// If the lock is lost while fn runs (taken over as stale), fn's context is
// cancelled.
//
// Every command that changes traffic or state goes through here.
func (f *Factory) mutate(ctx context.Context, opts mutateOptions, fn func(ctx context.Context, ev *release.Event) error) error {
	c, err := f.Config()
	if err != nil {
		return err
	}
	ev := &release.Event{Time: f.Now().UTC(), Action: opts.Action, App: c.ApplicationName, Reason: opts.Reason}
	if opts.DryRun {
		return fn(ctx, ev)
	}
	ttl, err := lockTTL(c)
	if err != nil {
		return err
	}
	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	// The lock names the local identity; the event waits for the AWS one.
	id, finalID := f.identityAsync(ctx)
	ev.Who, ev.OSUser, ev.Host = id.Who, id.OSUser, id.Host
	start := time.Now()
	if opts.WithoutLock {
		return f.mutateWithoutLock(ctx, st, opts, id, ttl, ev, start, finalID, fn)
	}

	var lk *store.Lock
	var runErr error
	if !opts.NoLock {
		var takeover string
		// The lock writes to the store as it is: its heartbeats and lease
		// renewals are what the fence asks, so they must not be fenced.
		raw, err := f.openStore(ctx)
		if err != nil {
			return err
		}
		lk, takeover, runErr = f.takeLock(ctx, raw, c, opts, id, ttl)
		runErr = f.unreachable(ctx, st, opts, runErr)
		if takeover != "" {
			// The previous holder died without a word: history says so.
			tev := *ev
			tev.Time, tev.Action, tev.Result, tev.Reason = f.Now().UTC(), release.ActionLock, release.ResultOK, takeover
			if err := store.AppendEvent(ctx, st, &tev); err != nil {
				f.warnf("could not record the lock takeover in history: %v", err)
			}
		}
	}
	if runErr == nil {
		f.flushSpool(ctx, st) // the store is reached: history gets what waited
		runCtx, stop := ctx, func() {}
		if lk != nil && !lk.Shared() {
			defer exportEnv(LockTokenEnv, lk.Info().Token)()
			runCtx, stop = cancelOnLoss(ctx, lk)
		}
		if lk != nil {
			// Every mutating step below checks the lease (target.CheckFence),
			// a hook's too: it acts for its holder, with its generation.
			runCtx = target.WithFence(runCtx, lk)
		}
		runErr = fn(runCtx, ev)
		stop()
		if lk != nil {
			runErr = f.settleLease(ctx, st, lk, runErr)
		}
	}
	finishEvent(ev, start, finalID, runErr)

	// Record and release even when interrupted: the caller's context may be
	// cancelled, so these get their own deadline.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// The event needs no lock, so it is written alongside; the marks are
	// updated before the lock goes, so the next holder sees them.
	recorded := make(chan error, 1)
	evc := *ev
	go func() { recorded <- f.recordEvent(wctx, st, &evc, runErr) }()
	if ev.Result == release.ResultOK && (lk == nil || lk.Check(wctx) == nil) {
		if err := store.UpdateMarks(wctx, st, ev.App, func(m store.Marks) { m.ApplyEvent(ev) }); err != nil {
			f.warnMarks(err)
		}
	}
	if lk != nil {
		if err := lk.Release(wctx); err != nil && !errors.Is(runErr, store.ErrLockLost) {
			f.warnf("%v (check with: oops lock status)", err)
		}
	}
	if err := <-recorded; err != nil {
		f.warnf("could not record this %s in history: %v", ev.Action, err)
	}
	return runErr
}

// settleLease makes a lost lock what the command reports. A holder that
// lost it cannot vouch for what it saw (the state it reports, a refusal it
// made): it may be the new holder's work, so its lease is checked once
// more even when fn succeeded. A hook's borrowed lease is its holder's to
// check.
func (f *Factory) settleLease(ctx context.Context, st store.Store, lk *store.Lock, runErr error) error {
	if !lk.Shared() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		cerr := lk.Check(cctx)
		cancel()
		if cerr != nil && runErr == nil {
			// It had finished: no "stopped before acting further".
			cerr = nameTakeover(ctx, st, lk, cerr)
			return withHint(fmt.Errorf("%w; what this command saw may be another operator's doing", cerr), "see what is live now: oops status; oops history")
		}
	}
	return lostLockError(ctx, st, lk, runErr)
}

// finishEvent fills in how the command ended.
func finishEvent(ev *release.Event, start time.Time, finalID func() identity, runErr error) {
	ev.DurationMS = time.Since(start).Milliseconds()
	ev.Who = finalID().Who
	ev.Result = resultOf(runErr)
	if runErr != nil {
		ev.Error = runErr.Error()
	}
}

// takeLock takes the application's lock for this command, or borrows it
// when this oops runs inside the holder's hook.
// It also describes a takeover of a dead holder's lock, if there was one.
func (f *Factory) takeLock(ctx context.Context, st store.Store, c *config.Config, opts mutateOptions, id identity, ttl time.Duration) (*store.Lock, string, error) {
	command := opts.commandName()
	var takeover string
	info := store.LockInfo{App: c.ApplicationName, Holder: id.Who, OSUser: id.OSUser, Host: id.Host, PID: os.Getpid(), PIDNS: pidNamespace(), Command: command}
	lk, err := store.AcquireLock(ctx, st, info, store.LockOptions{
		Now:   f.Now,
		TTL:   ttl,
		Wait:  f.LockWait,
		Token: f.Getenv(LockTokenEnv),
		Gone:  func(h store.LockInfo) (bool, string) { return f.holderExited(h) },
		OnTakeover: func(prev store.LockInfo, why string) {
			f.warnf("taking over the lock of %s from %s (%q): %s", c.ApplicationName, prev.Describe(), prev.Command, why)
			takeover = fmt.Sprintf("%s"+tookOver+"%s (%q, since %s): %s", command, prev.Describe(), prev.Command,
				prev.Started.UTC().Format(time.RFC3339), why)
		},
		OnWait: func(h store.LockInfo) {
			f.warnf("waiting up to %s for the lock of %s, held by %s (%q)", f.LockWait, c.ApplicationName, h.Describe(), h.Command)
		},
		OnHeartbeatError: func(err error) { f.warnf("could not refresh the lock: %v", err) },
	})
	var le *store.LockedError
	if errors.As(err, &le) {
		return nil, "", withHint(err, lockedHint(le.Info))
	}
	return lk, takeover, err
}

// lockedHint is the way through a lock held by holder.
func lockedHint(holder store.LockInfo) string {
	return fmt.Sprintf("wait for it with --lock-wait 5m; a holder that died loses the lock %s after its last heartbeat; to remove it now: oops lock release --force", holder.TTL())
}

// lockRefusal is the refusal takeLock would meet now with the lock as
// read (nil: it would take the lock, take it over, or share it).
func (f *Factory) lockRefusal(cur store.LockInfo) error {
	if cur.Released || (cur.Token != "" && cur.Token == f.Getenv(LockTokenEnv)) || cur.Stale(f.Now()) {
		return nil
	}
	if gone, _ := f.holderExited(cur); gone {
		return nil
	}
	return withHint(&store.LockedError{Info: cur, Now: f.Now()}, lockedHint(cur))
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

// exportEnv sets an environment variable for child processes (hooks are
// started with the process environment) and returns its undo.
func exportEnv(key, value string) func() {
	old, had := os.LookupEnv(key)
	_ = os.Setenv(key, value)
	return func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	}
}

// resultOf classifies how a mutation ended: refused means oops decided not
// to act (a gate, a conflict, the operator, another holder); failed means
// it tried and something broke.
func resultOf(err error) string {
	var ue usageError
	switch {
	case err == nil:
		return release.ResultOK
	case errors.Is(err, target.ErrVerifyInterrupted) && !errors.Is(err, store.ErrLockLost) && !errors.Is(err, target.ErrFenced):
		// The switch was made and stands; the operator chose not to wait
		// for verification, as --verify-timeout 0 does: a rollback still
		// marks the release it left BAD. The error keeps the note.
		return release.ResultOK
	case isAWSError(err):
		// AWS answered an attempted change with an error: it failed, even
		// when the target then reports an inconsistent state.
		return release.ResultFailed
	case errors.Is(err, target.ErrUnhealthy),
		errors.Is(err, target.ErrAborted),
		errors.Is(err, target.ErrInconsistent),
		errors.Is(err, target.ErrMisconfigured),
		errors.Is(err, store.ErrImmutable),
		errors.Is(err, target.ErrIntegrity), // checked before anything changed
		errors.Is(err, store.ErrBadRelease),
		errors.Is(err, release.ErrUnknownRevision),
		errors.Is(err, release.ErrAmbiguous),
		errors.Is(err, release.ErrNotPublished),
		errors.As(err, &ue):
		return release.ResultRefused
	case errors.Is(err, store.ErrLocked) && !errors.Is(err, store.ErrLockLost):
		return release.ResultRefused
	}
	return release.ResultFailed
}

// lockTTL is lock-ttl from .oopsrc (parsed when it loaded), or the default.
func lockTTL(c *config.Config) (time.Duration, error) {
	if d := c.Values.LockTTL; d > 0 {
		return d, nil
	}
	return store.DefaultLockTTL, nil
}

// warnf prints a diagnostic on stderr.
func (f *Factory) warnf(format string, args ...any) {
	fmt.Fprintf(f.IO.ErrOut, "oops: "+format+"\n", args...)
}
