package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultLockTTL is how long a lock outlives its holder's last heartbeat
// before someone else may take it over. Holders heartbeat every TTL/4, so
// a live holder has to miss three beats in a row to lose its lock.
const DefaultLockTTL = time.Minute

// MinLockTTL is the shortest lock-ttl: below it the holder would have to
// heartbeat faster than a store answers (and at ttl/4 = 0, not at all), so
// the lock would be anyone's to take over. AcquireLock raises a shorter
// TTL to it; .oopsrc refuses one.
const MinLockTTL = 100 * time.Millisecond

// LockKey is where an application's lock lives.
func LockKey(app string) string { return app + "/" + MetaDir + "/lock.json" }

// LockInfo is the content of a lock: who holds it, since when, doing what.
type LockInfo struct {
	// Token identifies this holding; commands started from the holder's
	// hooks present it (OOPS_LOCK_TOKEN) to run under the same lock.
	Token  string `json:"token"`
	App    string `json:"application"`
	Holder string `json:"holder"`
	OSUser string `json:"os_user,omitempty"`
	Host   string `json:"host"`
	PID    int    `json:"pid"`
	// PIDNS names the process-id space PID belongs to (Linux: the pid
	// namespace), so a holder on the same host can be checked for life
	// only where its PID means the same process.
	PIDNS     string    `json:"pid_ns,omitempty"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
	// TTLMS is the holder's lock-ttl in milliseconds: it promised to
	// heartbeat well within it.
	TTLMS int64 `json:"ttl_ms"`
	// Generation grows with every holding (a fencing token): the local
	// proxy refuses a switch from a holder older than the last it obeyed.
	Generation int64 `json:"generation,omitempty"`
	// Released marks the lock as free. A released lock is not deleted but
	// left as this tombstone, so that the next holder's generation follows
	// on from it instead of starting again.
	Released bool `json:"released,omitempty"`
}

// nextGeneration follows prev: larger than it, and than the wall clock in
// milliseconds, so that a lock object deleted by hand (or a new store)
// still starts above the generations a proxy has seen.
func nextGeneration(prev int64, now time.Time) int64 {
	return max(prev+1, now.UnixMilli())
}

// TTL is the holder's time-to-live: the lock-ttl it recorded, or
// DefaultLockTTL for a lock that records none (an unreadable lock file),
// which is how long such a lock holds.
func (i *LockInfo) TTL() time.Duration {
	if i.TTLMS > 0 {
		return time.Duration(i.TTLMS) * time.Millisecond
	}
	return DefaultLockTTL
}

// Stale reports whether the holder has missed its heartbeats for longer
// than its TTL at time now, so that the lock may be taken over.
func (i *LockInfo) Stale(now time.Time) bool {
	return now.Sub(i.Heartbeat) > i.TTL()
}

// LockedError says who holds a lock another command wanted.
type LockedError struct {
	Info LockInfo
	Now  time.Time
}

func (e *LockedError) Error() string {
	i := e.Info
	return fmt.Sprintf("%s is locked by %s: %q since %s (%s ago, last heartbeat %s ago)",
		i.App, i.Describe(), i.Command, i.Started.Local().Format("2006-01-02 15:04:05"),
		ago(e.Now, i.Started), ago(e.Now, i.Heartbeat))
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// Describe names the holder: "alice (alice@web1, pid 42)".
func (i *LockInfo) Describe() string {
	who := i.Holder
	if who == "" {
		who = i.OSUser
	}
	if i.Host == "" && i.PID == 0 {
		return who
	}
	return fmt.Sprintf("%s (%s@%s, pid %d)", who, i.OSUser, i.Host, i.PID)
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// ErrLockLost: the lock was taken over or removed while this process
// still thought it held it.
var ErrLockLost = fmt.Errorf("lock lost: %w", ErrLocked)

// LockOptions control AcquireLock.
type LockOptions struct {
	// TTL is this holder's time-to-live (0: DefaultLockTTL; at least
	// MinLockTTL).
	TTL time.Duration
	// Wait is how long to wait for a held lock before giving up (0: fail
	// at once).
	Wait time.Duration
	// Token, when it equals the current lock's token, means the caller
	// runs inside the holder (a hook): the lock is shared, not taken.
	Token string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Gone reports that a holder is known to have exited (it ran on this
	// machine and its process no longer exists), so its lock may be taken
	// over without waiting for its TTL; why says how it is known.
	Gone func(holder LockInfo) (gone bool, why string)
	// OnTakeover is told about a lock that is being taken over, and why.
	OnTakeover func(prev LockInfo, why string)
	// OnWait is told, once, that the caller is waiting for a holder.
	OnWait func(holder LockInfo)
	// OnHeartbeatError is told when a heartbeat could not be written.
	OnHeartbeatError func(error)
	// Poll is the interval between tries while waiting (0: derived from TTL).
	Poll time.Duration
}

// Lock is a held (or shared) application lock. Release it exactly once.
//
// A Lock is also a lease: Check says whether the holder may still act.
// The heartbeat goroutine notices a takeover only when it next runs, and a
// process that was stopped (SIGSTOP, a closed laptop lid) resumes with
// every goroutine at once; so every mutating step asks Check, which looks
// at how long ago a heartbeat was last confirmed, not at whether the
// goroutine has said anything yet.
type Lock struct {
	s    Store
	key  string
	info LockInfo
	// shared is true when this process runs inside the holder's hook and
	// must neither heartbeat nor release.
	shared bool
	// margin is how old the last confirmed heartbeat may be before the
	// holder must renew it before acting: half the TTL, so that a clock
	// skew of up to half the TTL between hosts still leaves the holder's
	// view of its lease shorter than anyone else's.
	margin time.Duration
	now    func() time.Time
	onErr  func(error)

	// beatMu serialises heartbeats: the goroutine's and Check's renewals.
	beatMu sync.Mutex

	mu   sync.Mutex
	etag string
	lost error
	// confirmed is when the last heartbeat that the store accepted was
	// sent (time.Now, with its monotonic reading); confirmedWall is the
	// same instant on the injectable clock.
	confirmed     time.Time
	confirmedWall time.Time

	stop    chan struct{}
	done    chan struct{}
	lostCh  chan struct{}
	relOnce sync.Once
}

// Info is what the lock records.
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Shared reports whether the lock is the parent command's, borrowed by a hook.
func (l *Lock) Shared() bool { return l.shared }

// Generation is this holding's fencing token.
func (l *Lock) Generation() int64 { return l.Info().Generation }

// Lost is closed when the lock is taken over or removed under the holder.
func (l *Lock) Lost() <-chan struct{} { return l.lostCh }

// Err says why the lock was lost, or nil.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// leaseAge is how long ago the last confirmed heartbeat was sent. It takes
// the larger of the monotonic and the wall-clock reading: the monotonic
// clock ignores wall-clock steps but stands still while the machine is
// suspended, which is exactly the stall a lease must see.
func (l *Lock) leaseAge() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(time.Since(l.confirmed), l.now().Sub(l.confirmedWall))
}

// Check returns nil while this holder may act: its lease was confirmed
// within the safety margin, or, when older (the process was stopped, the
// store was slow), it renews the lease now with a compare-and-swap that
// succeeds only if nobody took the lock over meanwhile. Otherwise it
// returns an error wrapping ErrLockLost that names the new holder.
//
// A shared lock (a hook's) cannot renew the lease, which its holder keeps:
// it reads the lock and may act while the lock still carries the holder's
// token and the holder's heartbeat is within half its TTL, the margin the
// holder itself keeps. A hook that outlives
// its holder's lease (both were stopped, the holder died) stops as the
// holder would.
func (l *Lock) Check(ctx context.Context) error {
	if l.shared {
		return l.checkShared(ctx)
	}
	if err := l.Err(); err != nil {
		return err
	}
	age := l.leaseAge()
	if age < l.margin {
		return nil
	}
	if err := l.beat(ctx); err != nil {
		if lost := l.Err(); lost != nil {
			return lost
		}
		return &LockLostError{Key: l.key, Why: fmt.Sprintf("its lease was last confirmed %s ago (lock-ttl %s) and cannot be renewed: %v",
			age.Round(time.Millisecond), l.info.TTL(), err)}
	}
	return nil
}

// checkShared is Check for a lock borrowed by a hook.
func (l *Lock) checkShared(ctx context.Context) error {
	cur, _, err := readLockRaw(ctx, l.s, l.key)
	if errors.Is(err, ErrNotFound) {
		return &LockLostError{Key: l.key, Why: "the lock this hook runs under was removed"}
	}
	if err != nil {
		return &LockLostError{Key: l.key, Why: fmt.Sprintf("the lease of the command this hook runs under cannot be confirmed: %v", err)}
	}
	if cur.Token != l.info.Token || cur.Released {
		return lostTo(l.key, &cur)
	}
	// The same margin as the holder's own lease: half its TTL.
	if now := l.now(); now.Sub(cur.Heartbeat) > cur.TTL()/2 {
		return &LockLostError{Key: l.key, Why: fmt.Sprintf("the command this hook runs under, %s, last confirmed its lease %s ago (lock-ttl %s): it may have lost the lock",
			cur.Describe(), ago(now, cur.Heartbeat), cur.TTL())}
	}
	return nil
}

// AcquireLock takes app's lock in s for info's holder. A free lock is taken
// with an atomic create; a stale one (heartbeat older than its TTL) with a
// compare-and-swap on the version that was read, so two contenders cannot
// both win. A held lock fails at once with a *LockedError, or after
// opts.Wait. While held, a goroutine refreshes the heartbeat.
func AcquireLock(ctx context.Context, s Store, info LockInfo, opts LockOptions) (*Lock, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	ttl = max(ttl, MinLockTTL)
	poll := opts.Poll
	if poll <= 0 {
		poll = min(max(ttl/8, 50*time.Millisecond), time.Second)
	}
	if info.Token == "" {
		info.Token = randomSuffix() + randomSuffix()
	}
	info.TTLMS = ttl.Milliseconds()
	key := LockKey(info.App)
	deadline := now().Add(opts.Wait)
	waiting := false
	vanished := 0
	for {
		t := now().UTC()
		info.Started, info.Heartbeat = t, t
		info.Generation = nextGeneration(0, t)
		body, err := json.Marshal(info)
		if err != nil {
			return nil, fmt.Errorf("take lock: %w", err)
		}
		sent := time.Now()
		obj, err := s.Create(ctx, key, bytes.NewReader(body), int64(len(body)), nil)
		if err == nil {
			return startLock(s, key, info, obj.ETag, ttl, sent, t, now, opts.OnHeartbeatError), nil
		}
		if !errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("take lock %s in %s: %w", key, s, err)
		}
		cur, etag, err := readLockRaw(ctx, s, key)
		if err == nil && cur.Released {
			// Free, left as a tombstone by the last holder.
			info.Generation = nextGeneration(cur.Generation, t)
			body, _ = json.Marshal(info)
			sent := time.Now()
			obj, err := s.Replace(ctx, key, body, etag)
			if err == nil {
				return startLock(s, key, info, obj.ETag, ttl, sent, t, now, opts.OnHeartbeatError), nil
			}
			if errors.Is(err, ErrPrecondition) || errors.Is(err, ErrNotFound) {
				continue // someone else took it first
			}
			return nil, fmt.Errorf("take lock %s in %s: %w", key, s, err)
		}
		if errors.Is(err, ErrNotFound) {
			// Released between our create and our read; a store that keeps
			// saying both "exists" and "not found" is broken, not busy.
			if vanished++; vanished > 100 {
				return nil, fmt.Errorf("take lock %s in %s: it exists but cannot be read", key, s)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if opts.Token != "" && cur.Token == opts.Token {
			return &Lock{s: s, key: key, info: cur, shared: true, now: now, lostCh: make(chan struct{})}, nil
		}
		why := ""
		if t := now(); cur.Stale(t) {
			why = fmt.Sprintf("its last heartbeat was %s ago, longer than its lock-ttl of %s", ago(t, cur.Heartbeat), cur.TTL())
		} else if opts.Gone != nil {
			if gone, w := opts.Gone(cur); gone {
				why = w
			}
		}
		if why != "" {
			info.Generation = nextGeneration(cur.Generation, t)
			body, _ = json.Marshal(info)
			sent := time.Now()
			obj, err := s.Replace(ctx, key, body, etag)
			if err == nil {
				if opts.OnTakeover != nil {
					opts.OnTakeover(cur, why)
				}
				return startLock(s, key, info, obj.ETag, ttl, sent, t, now, opts.OnHeartbeatError), nil
			}
			if errors.Is(err, ErrPrecondition) || errors.Is(err, ErrNotFound) {
				continue // someone else took it over or released it first
			}
			return nil, fmt.Errorf("take over lock %s in %s: %w", key, s, err)
		}
		if !now().Before(deadline) {
			return nil, &LockedError{Info: cur, Now: now()}
		}
		if !waiting && opts.OnWait != nil {
			opts.OnWait(cur)
		}
		waiting = true
		wait := min(poll, deadline.Sub(now()))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for lock: %w", context.Cause(ctx))
		case <-time.After(wait):
		}
	}
}

// ReadLock returns app's current lock and its version, or ErrNotFound
// when nobody holds it.
func ReadLock(ctx context.Context, s Store, app string) (LockInfo, string, error) {
	return readLock(ctx, s, LockKey(app))
}

// readLock is readLockRaw with a released lock reported as ErrNotFound.
func readLock(ctx context.Context, s Store, key string) (LockInfo, string, error) {
	info, etag, err := readLockRaw(ctx, s, key)
	if err == nil && info.Released {
		return LockInfo{}, "", ErrNotFound
	}
	return info, etag, err
}

// readLockRaw reads the lock object as it is, tombstone included.
func readLockRaw(ctx context.Context, s Store, key string) (LockInfo, string, error) {
	var info LockInfo
	rc, obj, err := s.Get(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return info, "", err
		}
		return info, "", fmt.Errorf("read lock %s in %s: %w", key, s, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return info, "", fmt.Errorf("read lock %s in %s: %w", key, s, err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		// An unreadable lock still blocks; it ages from its write time.
		info = LockInfo{Holder: "unknown (unreadable lock file)", Heartbeat: obj.Modified, Started: obj.Modified}
	}
	return info, obj.ETag, nil
}

// ForceReleaseLock frees app's lock whoever holds it. With a non-empty
// etag it only frees that version. The lock is left as a tombstone that
// keeps its generation, so the holder it was taken from stays fenced out.
func ForceReleaseLock(ctx context.Context, s Store, app, etag string) error {
	key := LockKey(app)
	cur, curTag, err := readLockRaw(ctx, s, key)
	if err == nil && etag != "" && curTag != etag {
		err = ErrPrecondition
	}
	if err == nil && !cur.Released {
		_, err = s.Replace(ctx, key, tombstone(cur, time.Now()), curTag)
	}
	if err != nil {
		return fmt.Errorf("release lock of %s in %s: %w", app, s, err)
	}
	return nil
}

// tombstone is what a released lock leaves behind: its generation.
func tombstone(prev LockInfo, now time.Time) []byte {
	t := now.UTC()
	body, _ := json.Marshal(LockInfo{App: prev.App, Released: true, Generation: prev.Generation, Started: t, Heartbeat: t})
	return body
}

func startLock(s Store, key string, info LockInfo, etag string, ttl time.Duration, sent, sentWall time.Time, now func() time.Time, onErr func(error)) *Lock {
	l := &Lock{s: s, key: key, info: info, etag: etag, margin: ttl / 2, now: now, onErr: onErr,
		confirmed: sent, confirmedWall: sentWall,
		stop: make(chan struct{}), done: make(chan struct{}), lostCh: make(chan struct{})}
	go l.heartbeat(ttl / 4)
	return l
}

// heartbeat refreshes the lock every interval until it is released or lost.
func (l *Lock) heartbeat(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.lostCh:
			return
		case <-t.C:
		}
		// A beat may take up to two intervals; past that the holder is
		// as good as silent and the next tick tries again.
		ctx, cancel := context.WithTimeout(context.Background(), 2*every)
		err := l.beat(ctx)
		cancel()
		if err != nil && l.Err() == nil && l.onErr != nil {
			// A transient failure: keep trying; a takeover needs the whole TTL.
			l.onErr(err)
		}
	}
}

// beat writes one heartbeat with a compare-and-swap on the version this
// holder last wrote, so it notices at once if anyone else wrote in between
// (a takeover or a forced release), and then marks the lock lost.
func (l *Lock) beat(ctx context.Context) error {
	l.beatMu.Lock()
	defer l.beatMu.Unlock()
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	info := l.info
	etag := l.etag
	l.mu.Unlock()
	sent, sentWall := time.Now(), l.now()
	info.Heartbeat = sentWall.UTC()
	body, _ := json.Marshal(info)
	obj, err := l.s.Replace(ctx, l.key, body, etag)
	if err == nil {
		l.mu.Lock()
		l.etag, l.info = obj.ETag, info
		l.confirmed, l.confirmedWall = sent, sentWall
		l.mu.Unlock()
		return nil
	}
	if !errors.Is(err, ErrPrecondition) && !errors.Is(err, ErrNotFound) {
		return err
	}
	cur, ok := l.adopt(info)
	if ok {
		// Our own earlier beat landed although we never heard back; the
		// lease counts from the older send, to be safe.
		return nil
	}
	l.markLost(lostTo(l.key, cur))
	return l.Err()
}

// LockLostError: this holder lost its lock, and to whom.
type LockLostError struct {
	Key string
	// By is the lock as it is now; nil when it could not be read.
	By *LockInfo
	// Why adds what is known when By is nil.
	Why string
}

func (e *LockLostError) Error() string {
	switch {
	case e.By == nil:
		return fmt.Sprintf("lost the lock %s: %s", e.Key, e.Why)
	case e.By.Released:
		return fmt.Sprintf("lost the lock %s: another holder took it and has released it since (generation %d now)", e.Key, e.By.Generation)
	}
	return fmt.Sprintf("lost the lock to %s (%q, since %s, generation %d)", e.By.Describe(), e.By.Command,
		e.By.Started.Local().Format("15:04:05"), e.By.Generation)
}

// Unwrap makes errors.Is(err, ErrLockLost) (and ErrLocked) true.
func (e *LockLostError) Unwrap() error { return ErrLockLost }

func lostTo(key string, cur *LockInfo) error {
	return &LockLostError{Key: key, By: cur, Why: "it was taken over or released by someone else"}
}

// adopt re-reads the lock after a failed compare-and-swap: if it still
// carries this holder's token, the version that did not match is one this
// holder wrote itself (a write whose answer was lost, e.g. to a timeout),
// so it takes that version and reports true. Otherwise it returns the
// lock as it is now (nil when it cannot be read).
func (l *Lock) adopt(info LockInfo) (*LockInfo, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cur, etag, err := readLockRaw(ctx, l.s, l.key)
	if err != nil {
		return nil, false
	}
	if cur.Token != info.Token || cur.Released {
		return &cur, false
	}
	l.mu.Lock()
	l.etag, l.info = etag, cur
	l.mu.Unlock()
	return &cur, true
}

func (l *Lock) markLost(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = err
		close(l.lostCh)
	}
}

// Release stops the heartbeat and frees the lock if this holder still has
// it, leaving a tombstone that keeps the generation. It uses its own
// deadline, not the caller's context, because it runs after interrupts
// too. A shared lock is left to its holder.
func (l *Lock) Release(ctx context.Context) error {
	if l.shared {
		return nil
	}
	var err error
	l.relOnce.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if lost := l.Err(); lost != nil {
			err = lost
			return
		}
		info := l.Info()
		l.mu.Lock()
		etag := l.etag
		l.mu.Unlock()
		_, e := l.s.Replace(ctx, l.key, tombstone(info, l.now()), etag)
		if errors.Is(e, ErrPrecondition) {
			if _, ok := l.adopt(info); ok {
				l.mu.Lock()
				etag = l.etag
				l.mu.Unlock()
				_, e = l.s.Replace(ctx, l.key, tombstone(info, l.now()), etag)
			}
		}
		if e != nil {
			if errors.Is(e, ErrPrecondition) || errors.Is(e, ErrNotFound) {
				err = &LockLostError{Key: l.key, Why: "it was taken over before release"}
				return
			}
			err = fmt.Errorf("release lock %s in %s: %w", l.key, l.s, e)
		}
	})
	return err
}
