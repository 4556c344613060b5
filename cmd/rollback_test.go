package cmd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// TestRollbackSaysTheConfigErrorFirst pins the order of rollback's checks:
// a .oopsrc that does not load is what the operator hears, before a bad
// --verify-timeout (as before 734d406).
func TestRollbackSaysTheConfigErrorFirst(t *testing.T) {
	t.Parallel()
	f, _, errOut := testFactory(t, `{"application-name": "api", "store": "rel", "bogus": 1}`)
	code := Main(f, []string{"rollback", "--yes", "--verify-timeout", "-1s"})
	if code != ExitUsage {
		t.Errorf("exit %d, want %d", code, ExitUsage)
	}
	if got := errOut.String(); !strings.Contains(got, "bogus") || strings.Contains(got, "--verify-timeout") {
		t.Errorf("stderr:\n%s\nwant the .oopsrc error (unknown key bogus), not the --verify-timeout one", got)
	}
}

// TestSwitchSaysWhatItDidWhenTheLockIsLostAfterwards: a switch that was
// made, and whose lock then turns out taken over at the final lease
// check, still prints what it made live (the error then says what it saw
// may be another operator's doing), as it did before 734d406 moved the
// sentence after the workflow.
func TestSwitchSaysWhatItDidWhenTheLockIsLostAfterwards(t *testing.T) {
	t.Parallel()
	f, s, _ := testFactory(t, `{"application-name": "api", "store": "rel", "lock-ttl": "1h"}`)
	var out bytes.Buffer
	f.IO.Out = &out
	var skew atomic.Int64
	f.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	live := release.Color("blue")
	mt := &mock.Target{
		StateFunc: func(context.Context) (*target.State, error) {
			return &target.State{Live: target.ColorState{Color: live, Commit: "aaaaaaa1"}, Off: target.ColorState{Color: live.Other(), Commit: "bbbbbbb2"}}, nil
		},
		ProbeFunc: func(context.Context, release.Color) error { return nil },
		PlanFunc: func(_ context.Context, st *target.State, to release.Color, w int) (*target.Plan, error) {
			return target.NewPlan(st.Live.Color, to, w, []string{"switch"}, func(context.Context) error {
				live = to
				skew.Store(int64(50 * time.Minute)) // paused for most of its lock-ttl
				bob, err := store.AcquireLock(context.Background(), s, store.LockInfo{App: "api", Holder: "bob", Command: "oops deploy"},
					store.LockOptions{TTL: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
				if err != nil {
					return err
				}
				t.Cleanup(func() { _ = bob.Release(context.Background()) })
				return nil
			}), nil
		},
		ApplyFunc: func(ctx context.Context, p *target.Plan) error { return p.Run(ctx) },
	}
	opts := newSwitchOptions(f)
	opts.Yes = true
	err := switchTo(context.Background(), opts, mt, "", 0, 0, workflow.SwitchRequest{Action: release.ActionShift, Command: "oops shift"})
	if !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("switch: %v, want the lock lost", err)
	}
	if want := "green is live now on mock"; !strings.HasPrefix(out.String(), want) {
		t.Errorf("stdout %q, want it to start with %q", out.String(), want)
	}
}

// TestRepairSaysWhatItDidWhenTheLockIsLostAfterwards: as for a switch, a
// repair that was made says so on stdout even when the final lease check
// finds the lock taken over (as before 734d406).
func TestRepairSaysWhatItDidWhenTheLockIsLostAfterwards(t *testing.T) {
	t.Parallel()
	f, s, _ := testFactory(t, `{"application-name": "api", "store": "rel", "lock-ttl": "1h"}`)
	var out bytes.Buffer
	f.IO.Out = &out
	var skew atomic.Int64
	f.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	mt := &mock.RepairTarget{
		Target: mock.Target{ApplyFunc: func(ctx context.Context, p *target.Plan) error { return p.Run(ctx) }},
		PlanRepairFunc: func(context.Context, release.Color) (*target.Plan, error) {
			return target.NewPlan("green", "blue", 0, []string{"restore listeners"}, func(context.Context) error {
				skew.Store(int64(50 * time.Minute)) // paused for most of its lock-ttl
				bob, err := store.AcquireLock(context.Background(), s, store.LockInfo{App: "api", Holder: "bob", Command: "oops deploy"},
					store.LockOptions{TTL: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
				if err != nil {
					return err
				}
				t.Cleanup(func() { _ = bob.Release(context.Background()) })
				return nil
			}), nil
		},
	}
	err := repairRun(context.Background(), &RepairOptions{IO: f.IO, Runner: f.Runner, Confirm: f.confirm, Yes: true,
		Target: func(context.Context) (target.Target, error) { return mt, nil }})
	if !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("repair: %v, want the lock lost", err)
	}
	if want := "blue is live now on mock (repaired)\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
}

// TestRollbackToSaysTheConfigErrorFirst: rollback --to checks .oopsrc
// before --verify-timeout, as every rollback does.
func TestRollbackToSaysTheConfigErrorFirst(t *testing.T) {
	t.Parallel()
	f, _, errOut := testFactory(t, `{"application-name": "api", "store": "rel", "bogus": 1}`)
	code := Main(f, []string{"rollback", "--to", "HEAD~1", "--yes", "--verify-timeout", "-1s"})
	if code != ExitUsage {
		t.Errorf("exit %d, want %d", code, ExitUsage)
	}
	if got := errOut.String(); !strings.Contains(got, "bogus") || strings.Contains(got, "--verify-timeout") {
		t.Errorf("stderr:\n%s\nwant the .oopsrc error (unknown key bogus), not the --verify-timeout one", got)
	}
}
