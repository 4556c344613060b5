package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// An unreachable store (no bucket, no permission, S3 or the network down,
// a dir store on a disk that is gone) must not block oops rollback. It
// cannot take the lock then, and says so in one line, offering --no-lock;
// with --no-lock it switches without the lock and keeps the event in a
// spool on this machine, which the next command that reaches the store
// appends to history. --no-lock is refused whenever the store can be
// reached: the lock is what keeps two operators apart.

// probeTimeout bounds the look at the store that decides whether
// --no-lock is allowed (the SDK retries within it).
const probeTimeout = 20 * time.Second

// unreachableError: the lock could not be taken for a reason other than a
// holder. It names the store and the command that goes on without it; it
// wraps the cause, so the exit code is the cause's.
type unreachableError struct {
	store string
	cause error
	offer string
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the store %s to take the lock (%s): roll back without it: %s", e.store, Brief(e.cause), e.offer)
}

func (e *unreachableError) Unwrap() error { return e.cause }

// unreachable turns a failure to take the lock into an *unreachableError
// when the command offers a way without the lock and the failure is not
// another holder, an interrupt, or a lock lost.
func unreachable(ctx context.Context, st store.Store, ch Change, err error) error {
	if err == nil || ch.NoLockOffer == "" || errors.Is(err, store.ErrLocked) || ctx.Err() != nil {
		return err
	}
	return &unreachableError{store: st.String(), cause: err, offer: ch.NoLockOffer}
}

// Brief is the gist of why a store call failed, for one line: the AWS
// error code and message, the network error, or the last part of the
// message.
func Brief(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if m := ae.ErrorMessage(); m != "" && m != ae.ErrorCode() {
			return ae.ErrorCode() + ": " + m
		}
		return ae.ErrorCode()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection was closed without an answer"
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Err.Error()
	}
	msg := FirstLine(err)
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg) > 120 {
		msg = msg[i+2:]
	}
	return msg
}

// withoutLock is rollback --no-lock: run fn without the lock, but
// only when the store cannot be reached, and keep the event in the spool.
func (r *Runner) withoutLock(ctx context.Context, st store.Store, ch Change, id Identity, ttl time.Duration,
	ev *release.Event, start time.Time, finalID func() Identity, fn func(ctx context.Context, ev *release.Event) error) error {
	down, err := r.probeStore(ctx, st, ev.App, id, ttl)
	if err != nil {
		return err
	}
	if down == nil {
		return target.Hinted(Usagef("--no-lock: the store %s can be reached, so %s takes the lock", st, ch.commandName()),
			"run it without --no-lock (oops lock status shows who holds the lock)")
	}
	r.storeDown = down
	dir, _ := r.spoolDir()
	r.warnf("warning: %s cannot be reached (%s): going on WITHOUT the lock; the event is kept in %s until a command reaches the store", st, Brief(down), dir)
	runErr := fn(ctx, ev)
	r.onFailure(ctx, ev, runErr)
	finishEvent(ev, start, finalID, runErr)
	r.setNotified(ev, r.notify(ctx, ev))
	if _, err := r.spoolEvent(st, ev); err != nil {
		r.warnf("could not keep this %s for history: %v", ev.Action, err)
	}
	return runErr
}

// probeStore decides whether --no-lock may go on: it returns why the store
// cannot be reached, or nil when it can. Reachable means the lock could
// be taken or is held: a lock that can be read, or one that can be
// created (and is removed at once: nothing changes).
func (r *Runner) probeStore(ctx context.Context, st store.Store, app string, id Identity, ttl time.Duration) (down, err error) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, _, err = store.ReadLock(pctx, st, app)
	if err == nil {
		return nil, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		var lk *store.Lock
		lk, err = store.AcquireLock(pctx, st, store.LockInfo{App: app, Holder: id.Who, OSUser: id.OSUser, Host: id.Host, PID: os.Getpid(),
			Command: "oops rollback --no-lock (checking the store)"}, store.LockOptions{TTL: ttl})
		if err == nil {
			if rerr := lk.Release(ctx); rerr != nil {
				r.warnf("%v (check with: oops lock status)", rerr)
			}
			return nil, nil
		}
		if errors.Is(err, store.ErrLocked) {
			return nil, nil
		}
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx) // interrupted: neither answer
	}
	return err, nil
}

// recordEvent writes ev to history; when the store cannot take it (or
// cannot be reached, as cause says), ev is kept in the spool instead.
func (r *Runner) recordEvent(ctx context.Context, st store.Store, ev *release.Event, cause error) error {
	var ue *unreachableError
	if errors.As(cause, &ue) {
		// oops decided not to act without the lock: refused, like a held
		// lock. The error says it all: no second line.
		ev.Result = release.ResultRefused
		_, err := r.spoolEvent(st, ev)
		return err
	}
	err := store.AppendEvent(ctx, st, ev)
	if err == nil {
		return nil
	}
	path, serr := r.spoolEvent(st, ev)
	if serr != nil {
		return fmt.Errorf("%w; keep it for later: %w", err, serr)
	}
	r.warnf("could not record this %s in history (%s): kept in %s, appended by the next command that reaches the store", ev.Action, Brief(err), path)
	return nil
}

// spoolEntry is one event kept on this machine for a store.
type spoolEntry struct {
	Store string        `json:"store"`
	Event release.Event `json:"event"`
}

// spoolDir is $XDG_STATE_HOME/oops/spool, else ~/.local/state/oops/spool.
func (r *Runner) spoolDir() (string, error) {
	base := r.d.Getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home := r.d.Getenv("HOME")
		if home == "" {
			var err error
			if home, err = os.UserHomeDir(); err != nil {
				return "", fmt.Errorf("find the state directory: %w", err)
			}
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "oops", "spool"), nil
}

// spoolEvent keeps ev in the spool (folders 0700, file 0600: events name
// people and hosts) and returns its path. The event gets its final ID
// now, so appending it twice stores it once.
func (r *Runner) spoolEvent(st store.Store, ev *release.Event) (string, error) {
	dir, err := r.spoolDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create spool %s: %w", dir, err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return "", fmt.Errorf("create spool %s: %w", dir, err)
		}
	}
	ev.Time = ev.Time.UTC()
	if ev.ID == "" {
		ev.ID = store.NewEventID(ev.App, ev.Time)
	}
	data, err := json.MarshalIndent(spoolEntry{Store: st.String(), Event: *ev}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("spool event: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("spool event: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("spool event: %w", err)
	}
	path := filepath.Join(dir, ev.ID+".json")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("spool event: %w", err)
	}
	return path, nil
}

// spooledFile is one entry of the spool with its path.
type spooledFile struct {
	path  string
	entry spoolEntry
}

// readSpool returns the spooled events for st and app, newest first.
func (r *Runner) readSpool(st store.Store, app string) []spooledFile {
	dir, err := r.spoolDir()
	if err != nil {
		return nil
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []spooledFile
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var e spoolEntry
		if err := json.Unmarshal(data, &e); err != nil || e.Event.ID == "" {
			r.WarnOnce("spool:"+path, "warning: %s is not a spooled oops event: left alone", path)
			continue
		}
		if e.Store == st.String() && e.Event.App == app {
			out = append(out, spooledFile{path: path, entry: e})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].entry.Event.Time.After(out[j].entry.Event.Time) })
	return out
}

// Spooled is the events kept in the spool for st and app, newest first.
func (r *Runner) Spooled(st store.Store, app string) []release.Event {
	var evs []release.Event
	for _, s := range r.readSpool(st, app) {
		evs = append(evs, s.entry.Event)
	}
	return evs
}

// FlushSpool appends the events spooled for this store and application
// to history (oldest first, each at most once) and applies them to the
// release marks, saying so on stderr. A store that fails again keeps the
// rest for the next command. It returns how many it appended (marks read
// before may be out of date when any).
func (r *Runner) FlushSpool(ctx context.Context, st store.Store) int {
	c, err := r.d.Config()
	if err != nil || r.storeDown != nil {
		return 0
	}
	files := r.readSpool(st, c.ApplicationName)
	n := 0
	for i := len(files) - 1; i >= 0; i-- {
		ev := files[i].entry.Event
		if _, err := store.PutEvent(ctx, st, &ev); err != nil {
			r.warnf("could not append the events kept in %s yet: %s", filepath.Dir(files[i].path), Brief(err))
			break
		}
		if ev.Result == release.ResultOK {
			if err := store.UpdateMarks(ctx, st, ev.App, func(m store.Marks) { m.ApplyLateEvent(&ev) }); err != nil {
				r.WarnMarks(err)
			}
		}
		if err := os.Remove(files[i].path); err != nil {
			r.warnf("appended %s to history, but could not remove it: %v", files[i].path, err)
		}
		n++
	}
	if n > 0 {
		noun := "events"
		if n == 1 {
			noun = "event"
		}
		r.warnf("appended %d %s recorded while %s could not be reached to history", n, noun, st)
	}
	return n
}

// FirstLine is the first line of err's message.
func FirstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}
