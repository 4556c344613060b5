package workflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	"github.com/oops-deploy/oops/target"
)

// fixture is a Runner on a fresh directory store, with no AWS and a
// fixed operator (ada). Tests change d before calling runner().
type fixture struct {
	d      Deps
	st     store.Store
	errOut *bytes.Buffer
	wd     string
	env    map[string]string
	r      *Runner
}

func newFixture(t *testing.T, rc string) *fixture {
	t.Helper()
	wd := t.TempDir()
	if rc == "" {
		rc = `{"application-name": "api", "store": "rel"}`
	}
	path := filepath.Join(wd, ".oopsrc")
	if err := os.WriteFile(path, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{st: dir.New(filepath.Join(wd, "rel")), errOut: &bytes.Buffer{}, wd: wd,
		env: map[string]string{"USER": "ada", "HOME": wd, "GIT_CONFIG_NOSYSTEM": "1"}}
	host, _ := os.Hostname()
	fx.d = Deps{
		Config:   func() (*config.Config, error) { return c, nil },
		Store:    func(context.Context) (store.Store, error) { return store.Guarded(fx.st, target.CheckFence), nil },
		RawStore: func(context.Context) (store.Store, error) { return fx.st, nil },
		Who:      func() (string, string) { return "ada", host },
		WorkDir:  func() (string, error) { return wd, nil },
		Now:      time.Now,
		LockWait: func() time.Duration { return 0 },
		Getenv:   func(k string) string { return fx.env[k] },
		Report:   writerReporter{fx.errOut},
	}
	return fx
}

// runner is the fixture's Runner, made on first use from d.
func (fx *fixture) runner() *Runner {
	if fx.r == nil {
		fx.r = New(fx.d)
	}
	return fx.r
}

// writerReporter prints as the CLI does, into a buffer.
type writerReporter struct{ w io.Writer }

func (r writerReporter) Progressf(format string, args ...any) { fmt.Fprintf(r.w, format+"\n", args...) }
func (r writerReporter) Warnf(format string, args ...any) {
	fmt.Fprintf(r.w, "oops: "+format+"\n", args...)
}

// hintOf is the first hint attached to err.
func hintOf(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(interface{ Hint() string }); ok && h.Hint() != "" {
			return h.Hint()
		}
	}
	return ""
}

func TestMutateRecordsEveryOutcomeAndReleases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		result string
	}{
		{"ok", nil, release.ResultOK},
		{"health gate", fmt.Errorf("refusing to switch to green: %w", target.ErrUnhealthy), release.ResultRefused},
		{"operator said no", target.ErrAborted, release.ResultRefused},
		{"immutable", store.ErrImmutable, release.ResultRefused},
		{"artifact changed in the store", fmt.Errorf("deploy abc: %w", target.ErrIntegrity), release.ResultRefused},
		{"known BAD", &store.BadReleaseError{Commit: "abc"}, release.ResultRefused},
		{"bad input", Usagef("no such color"), release.ResultRefused},
		{"AWS broke", errors.New("ServiceUnavailable"), release.ResultFailed},
		{"deploy failed", target.ErrDeployFailed, release.ResultFailed},
		{"verification reverted", target.ErrVerifyFailed, release.ResultFailed},
		{"interrupted", context.Canceled, release.ResultFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			s := fx.st
			ctx := context.Background()
			err := fx.runner().Locked(ctx, Change{Action: release.ActionRollback, Reason: "why"}, func(ctx context.Context, ev *release.Event) error {
				if _, _, err := store.ReadLock(ctx, s, "api"); err != nil {
					t.Errorf("fn runs without the lock: %v", err)
				}
				ev.From = release.Side{Color: release.Blue, Commit: strings.Repeat("a", 40)}
				ev.To = release.Side{Color: release.Green, Commit: strings.Repeat("b", 40)}
				return tt.err
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("mutate returned %v, want %v", err, tt.err)
			}
			if _, _, err := store.ReadLock(ctx, s, "api"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("lock left behind: %v", err)
			}
			evs, err := store.ListEvents(ctx, s, "api", store.EventQuery{})
			if err != nil || len(evs) != 1 {
				t.Fatalf("events: %v, %v; want exactly one", evs, err)
			}
			ev := evs[0]
			if ev.Result != tt.result || ev.Action != release.ActionRollback || ev.Reason != "why" || ev.Who != "ada" || ev.OSUser != "ada" || ev.To.Color != release.Green {
				t.Errorf("event %+v, want result %s by ada", ev, tt.result)
			}
			if (tt.err == nil) != (ev.Error == "") {
				t.Errorf("event error %q for %v", ev.Error, tt.err)
			}
			marks, _ := store.LoadMarks(ctx, s, "api")
			if bad := marks[strings.Repeat("a", 40)].Bad; bad != (tt.err == nil) {
				t.Errorf("release left marked BAD = %v, want %v (only a rollback that happened marks it)", bad, tt.err == nil)
			}
		})
	}
}

// TestLockedPassesTheTokenToChildren: processes that fn starts get the
// lock's token through fn's context (target.ChildEnv), never through this
// process's environment, and an oops started with it runs under the same
// lock.
func TestLockedPassesTheTokenToChildren(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	s := fx.st
	ctx := context.Background()
	err := fx.runner().Locked(ctx, Change{Action: release.ActionDeploy}, func(ctx context.Context, _ *release.Event) error {
		info, _, err := store.ReadLock(ctx, s, "api")
		if err != nil {
			return err
		}
		token := childToken(ctx)
		if token != info.Token {
			t.Errorf("%s=%q for children, want the lock's token %q", LockTokenEnv, token, info.Token)
		}
		if v := os.Getenv(LockTokenEnv); v != "" {
			t.Errorf("the token is in this process's environment: %q", v)
		}
		return hookRunner(t, fx, token).Locked(ctx, Change{Action: release.ActionSwitch}, func(context.Context, *release.Event) error { return nil })
	})
	if err != nil {
		t.Fatalf("a hook under the holder's lock: %v", err)
	}
	if _, _, err := store.ReadLock(ctx, s, "api"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lock left behind: %v", err)
	}
	evs, _ := store.ListEvents(ctx, s, "api", store.EventQuery{})
	if len(evs) != 2 {
		t.Errorf("%d events, want the deploy's and the hook's", len(evs))
	}
}

// childToken is the lock token ctx passes to the processes a backend starts.
func childToken(ctx context.Context) string {
	for _, kv := range target.ChildEnv(ctx) {
		if v, ok := strings.CutPrefix(kv, LockTokenEnv+"="); ok {
			return v
		}
	}
	return ""
}

// hookRunner is another oops process on the same store and work dir,
// started by the holder's hook with its token.
func hookRunner(t *testing.T, fx *fixture, token string) *Runner {
	t.Helper()
	hook := newFixture(t, "")
	d := hook.d
	d.Config, d.Store, d.RawStore, d.WorkDir = fx.d.Config, fx.d.Store, fx.d.RawStore, fx.d.WorkDir
	d.Getenv = func(k string) string {
		if k == LockTokenEnv {
			return token
		}
		return fx.d.Getenv(k)
	}
	return New(d)
}

func TestMutateDryRunTakesNothing(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	s := fx.st
	ctx := context.Background()
	ran := false
	err := fx.runner().Locked(ctx, Change{Action: release.ActionRollback, DryRun: true}, func(context.Context, *release.Event) error {
		ran = true
		if _, _, err := store.ReadLock(ctx, s, "api"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a dry run took the lock: %v", err)
		}
		return nil
	})
	if err != nil || !ran {
		t.Fatalf("dry run: ran=%v err=%v", ran, err)
	}
	if evs, _ := store.ListEvents(ctx, s, "api", store.EventQuery{}); len(evs) != 0 {
		t.Errorf("a dry run recorded %d events", len(evs))
	}
}

// TestMutateLockedIsRefusedAndRecorded: a held lock stops the command
// before fn runs (exit 5), names the holder, and is recorded.
func TestMutateLockedIsRefusedAndRecorded(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	s := fx.st
	ctx := context.Background()
	held, err := store.AcquireLock(ctx, s, store.LockInfo{App: "api", Holder: "grace", Host: "elsewhere", PID: 7, Command: "oops deploy v2"}, store.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	err = fx.runner().Locked(ctx, Change{Action: release.ActionRollback}, func(context.Context, *release.Event) error {
		t.Error("fn ran while another holder had the lock")
		return nil
	})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), `grace (@elsewhere, pid 7): "oops deploy v2"`) {
		t.Fatalf("got %v, want ErrLocked naming grace's deploy", err)
	}
	evs, _ := store.ListEvents(ctx, s, "api", store.EventQuery{})
	if len(evs) != 1 || evs[0].Result != release.ResultRefused {
		t.Fatalf("events %+v, want one refused", evs)
	}
	if cur, _, _ := store.ReadLock(ctx, s, "api"); cur.Holder != "grace" {
		t.Errorf("the refused command disturbed the lock: %+v", cur)
	}
}

// TestMutateLostLockCancelsWork: when someone takes the lock over while fn
// runs (it was believed dead), fn's context is cancelled at once.
func TestMutateLostLockCancelsWork(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, `{"application-name": "api", "store": "rel", "lock-ttl": "400ms"}`)
	s := fx.st
	ctx := context.Background()
	err := fx.runner().Locked(ctx, Change{Action: release.ActionSwitch}, func(ctx context.Context, _ *release.Event) error {
		if err := store.ForceReleaseLock(ctx, s, "api", ""); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * time.Second):
			t.Error("fn kept running after its lock was removed")
			return nil
		}
	})
	if !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("got %v, want ErrLockLost", err)
	}
	evs, _ := store.ListEvents(ctx, s, "api", store.EventQuery{})
	if len(evs) != 1 || evs[0].Result != release.ResultFailed {
		t.Errorf("events %+v, want one failed", evs)
	}
}

// TestMutateLeaseOldButNotTakenOver: a command whose lease went past its
// margin (the process was paused) while nobody took the lock renews it at
// its next fenced step and goes on; one whose lock was taken meanwhile
// writes nothing more and fails with "lost the lock to ...".
func TestMutateLeaseOldButNotTakenOver(t *testing.T) {
	t.Parallel()
	for _, takenOver := range []bool{false, true} {
		t.Run(fmt.Sprintf("takenOver=%v", takenOver), func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, `{"application-name": "api", "store": "rel", "lock-ttl": "1h"}`)
			s := fx.st
			var skew atomic.Int64
			fx.d.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := fx.runner().Locked(ctx, Change{Action: release.ActionSwitch, Reason: "paused"}, func(ctx context.Context, ev *release.Event) error {
				// The process was paused for most of its lock-ttl.
				skew.Store(int64(50 * time.Minute))
				if takenOver {
					bob, err := takeOverAsBob(s, "oops deploy")
					if err != nil {
						return err
					}
					defer bob.Release(context.Background())
				}
				return writeProbe(ctx, fx)
			})
			_, statErr := s.Stat(context.Background(), "api/probe")
			if takenOver {
				if !errors.Is(err, store.ErrLockLost) || !strings.Contains(err.Error(), "lost the lock to bob") {
					t.Fatalf("mutate after a takeover: %v, want lost the lock to bob", err)
				}
				if statErr == nil {
					t.Fatal("a holder that lost the lock wrote to the store")
				}
				return
			}
			if err != nil {
				t.Fatalf("mutate after a pause nobody used: %v", err)
			}
			if statErr != nil {
				t.Fatalf("the write after renewing: %v", statErr)
			}
		})
	}
}

// TestMutateHookFollowsHoldersLease: an oops started by a hook under the
// holder's token (OOPS_LOCK_TOKEN) is fenced like its holder: it carries
// the holder's generation to the proxy, and once the holder lost the lock
// it writes nothing more and fails with "lost the lock to ...".
func TestMutateHookFollowsHoldersLease(t *testing.T) {
	t.Parallel()
	for _, takenOver := range []bool{false, true} {
		t.Run(fmt.Sprintf("takenOver=%v", takenOver), func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			s := fx.st
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var hookErr error
			_ = fx.runner().Locked(ctx, Change{Action: release.ActionDeploy}, func(ctx context.Context, _ *release.Event) error {
				parentGen := target.FenceGeneration(ctx)
				hook := hookRunner(t, fx, childToken(ctx))
				// The hook is another process: it sees none of this one's context.
				hctx, hcancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer hcancel()
				hookErr = hook.Locked(hctx, Change{Action: release.ActionSwitch}, func(ctx context.Context, _ *release.Event) error {
					if got := target.FenceGeneration(ctx); got != parentGen || got == 0 {
						t.Errorf("the hook's switch carries generation %d, want its holder's %d", got, parentGen)
					}
					if takenOver {
						bob, err := takeOverAsBob(s, "oops rollback")
						if err != nil {
							return err
						}
						defer bob.Release(context.Background())
					}
					return writeProbe(ctx, fx)
				})
				return nil
			})
			_, statErr := s.Stat(context.Background(), "api/probe")
			if !takenOver {
				if hookErr != nil || statErr != nil {
					t.Fatalf("a hook under a live holder: %v (probe: %v)", hookErr, statErr)
				}
				return
			}
			if statErr == nil {
				t.Error("a hook whose holder lost the lock wrote to the store")
			}
			if !errors.Is(hookErr, store.ErrLockLost) || !strings.Contains(hookErr.Error(), "lost the lock to bob") || !errors.Is(hookErr, store.ErrLocked) {
				t.Fatalf("hook after its holder lost the lock: %v, want lost the lock to bob", hookErr)
			}
		})
	}
}

// takeOverAsBob takes the api lock over as bob, whose clock says its
// holder's heartbeat is hours old.
func takeOverAsBob(s store.Store, command string) (*store.Lock, error) {
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	bob, err := store.AcquireLock(context.Background(), s, store.LockInfo{App: "api", Holder: "bob", Command: command}, store.LockOptions{TTL: time.Hour, Now: later})
	if err != nil {
		return nil, fmt.Errorf("bob's takeover: %w", err)
	}
	return bob, nil
}

// writeProbe writes api/probe through f's (fenced) store.
func writeProbe(ctx context.Context, fx *fixture) error {
	st, err := fx.d.Store(ctx)
	if err != nil {
		return err
	}
	_, err = st.Create(ctx, "api/probe", strings.NewReader("x"), 1, nil)
	return err
}

// TestMutateLockedHintSaysTheRealTTL: a lock that records no lock-ttl (an
// unreadable lock file) still expires after the default; the refusal must
// say so, not "loses the lock 0s after its last heartbeat".
func TestMutateLockedHintSaysTheRealTTL(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	s := fx.st
	ctx := context.Background()
	if _, err := s.Create(ctx, store.LockKey("api"), strings.NewReader(`{"tok`), 5, nil); err != nil {
		t.Fatal(err)
	}
	err := fx.runner().Locked(ctx, Change{Action: release.ActionRollback}, func(context.Context, *release.Event) error {
		t.Error("fn ran under an unreadable lock")
		return nil
	})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("loses the lock %s after its last heartbeat", store.DefaultLockTTL)
	if h := hintOf(err); !strings.Contains(h, want) {
		t.Errorf("hint %q, want it to say %q", h, want)
	}
}

// Ctrl-C during the post-switch verification (on a Classic ELB it now
// lasts at least the ELB's judge time, 65s on defaults) leaves the switch
// standing: history records it as done, like --verify-timeout 0, so that a
// rollback still marks the release it left BAD. A lost lock that stopped
// the wait is not that.
func TestResultOfInterruptedVerification(t *testing.T) {
	interrupted := fmt.Errorf("green: %w (green is live): %w", target.ErrVerifyInterrupted, context.Canceled)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"interrupted verification", interrupted, release.ResultOK},
		{"lock lost during verification", fmt.Errorf("%w: %w", store.ErrLockLost, interrupted), release.ResultFailed},
		{"interrupted elsewhere", context.Canceled, release.ResultFailed},
	}
	for _, tc := range tests {
		if got := ResultOf(tc.err); got != tc.want {
			t.Errorf("%s: resultOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestMutateLostLockAfterTheLastChange: a command whose lock was taken
// over after its last change finds out at its final lease check and exits
// 5, saying once whom it lost the lock to (it did not stop early: it had
// finished).
func TestMutateLostLockAfterTheLastChange(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, `{"application-name": "api", "store": "rel", "lock-ttl": "1h"}`)
	s := fx.st
	var skew atomic.Int64
	fx.d.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	err := fx.runner().Locked(context.Background(), Change{Action: release.ActionSwitch, Reason: "paused"}, func(ctx context.Context, ev *release.Event) error {
		skew.Store(int64(50 * time.Minute)) // paused for most of its lock-ttl
		bob, err := takeOverAsBob(s, "oops deploy")
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = bob.Release(context.Background()) })
		return nil
	})
	if !errors.Is(err, store.ErrLockLost) || !errors.Is(err, store.ErrLocked) {
		t.Fatalf("mutate: %v, want the lock lost", err)
	}
	if n := strings.Count(err.Error(), "lost the lock to bob"); n != 1 || strings.Contains(err.Error(), "stopped before acting further") {
		t.Errorf("error says the loss %d times, or that it stopped early: %v", n, err)
	}
}

// TestResultOfUsageError: bad input is refused whatever it wraps (a usage
// error does not unwrap, as cmd's never did): an AWS error quoted in it
// does not make it "failed".
func TestResultOfUsageError(t *testing.T) {
	aws := &smithy.GenericAPIError{Code: "ValidationError", Message: "bad name"}
	for _, err := range []error{
		Usagef("bad flag"),
		Usagef("publish x: %w", aws),
		fmt.Errorf("deploy: %w", Usagef("--to: %w", aws)),
	} {
		if got := ResultOf(err); got != release.ResultRefused {
			t.Errorf("ResultOf(%v) = %q, want %q", err, got, release.ResultRefused)
		}
	}
}
