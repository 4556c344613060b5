package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// The releases of the tests: v2 is live on blue, v1 (the one before) on
// green, the off color.
var (
	v1 = strings.Repeat("1", 40)
	v2 = strings.Repeat("2", 40)
)

// board is a load balancer in memory (a mock.RepairTarget): which color is
// live with what share, the commit each runs. It logs every call, and
// notes what a test cannot see from outside: whether the lock was held
// when the switch was planned, and whether Apply got the lock's fence.
type board struct {
	mock.RepairTarget
	st    target.State
	calls []string
	// planLocked: the application's lock existed at each Plan call.
	planLocked []bool
	// fenced: each Apply's context carried a fence that let it through.
	fenced []bool
}

// newBoard has blue live with all the traffic running v2, green off
// running v1. Tests replace the funcs whose answers they change.
func newBoard(fx *fixture) *board {
	b := &board{st: target.State{
		Kind: "mock",
		Live: target.ColorState{Color: release.Blue, Commit: v2, Weight: 100},
		Off:  target.ColorState{Color: release.Green, Commit: v1},
	}}
	b.Name = "lb api"
	b.StateFunc = func(context.Context) (*target.State, error) {
		b.log("state")
		st := b.st
		return &st, nil
	}
	b.PlanFunc = func(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
		b.log("plan %s %d", to, weight)
		_, _, err := store.ReadLock(ctx, fx.st, "api")
		b.planLocked = append(b.planLocked, err == nil)
		return b.plan(st.Live.Color, to, weight), nil
	}
	b.ApplyFunc = func(ctx context.Context, p *target.Plan) error {
		b.fenced = append(b.fenced, target.FenceOf(ctx) != nil && target.CheckFence(ctx) == nil)
		return p.Run(ctx)
	}
	b.ProbeFunc = func(_ context.Context, c release.Color) error {
		b.log("probe %s", c)
		return nil
	}
	b.VerifyFunc = func(_ context.Context, c release.Color, _ time.Duration) error {
		b.log("verify %s", c)
		return nil
	}
	return b
}

func (b *board) log(format string, args ...any) {
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

// plan moves weight percent of the traffic to to when run.
func (b *board) plan(from, to release.Color, weight int) *target.Plan {
	return target.NewPlan(from, to, weight, []string{fmt.Sprintf("send %d%% to %s", weight, to)}, func(context.Context) error {
		b.log("apply %s %d", to, weight)
		if b.st.Live.Color != to && weight >= 50 {
			b.st.Live, b.st.Off = b.st.Off, b.st.Live
		}
		b.st.Live.Weight, b.st.Off.Weight = 100, 0
		if weight < 100 {
			b.st.Base = from
			if b.st.Live.Color == to {
				b.st.Live.Weight, b.st.Off.Weight = weight, 100-weight
			} else {
				b.st.Live.Weight, b.st.Off.Weight = 100-weight, weight
			}
		}
		return nil
	})
}

// plain is the board as a target.Target only: no RepairPlanner to find.
func (b *board) plain() *mock.Target { return &b.Target }

// history is every event recorded, newest first.
func (fx *fixture) history(t *testing.T) []release.Event {
	t.Helper()
	evs, err := store.ListEvents(context.Background(), fx.st, "api", store.EventQuery{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return evs
}

// noLockLeft fails t when the lock is still in the store.
func (fx *fixture) noLockLeft(t *testing.T) {
	t.Helper()
	if info, _, err := store.ReadLock(context.Background(), fx.st, "api"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lock left behind: %+v, %v", info, err)
	}
}

// markBad marks commit BAD, as a rollback from it would have.
func (fx *fixture) markBad(t *testing.T, commit string) {
	t.Helper()
	err := store.UpdateMarks(context.Background(), fx.st, "api", func(m store.Marks) {
		m[commit] = store.Mark{Bad: true, BadReason: "rolled back from", BadBy: "grace"}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (fx *fixture) isBad(t *testing.T, commit string) bool {
	t.Helper()
	m, err := store.LoadMarks(context.Background(), fx.st, "api")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("load marks: %v", err)
	}
	return m[commit].Bad
}

func yes(*target.Plan) (bool, error) { return true, nil }

func TestSwitch(t *testing.T) {
	t.Parallel()
	c0, c1 := strings.Repeat("c", 40), strings.Repeat("d", 40)
	tests := []struct {
		name  string
		setup func(t *testing.T, fx *fixture, b *board)
		req   SwitchRequest // Action rollback, Reason "5xx", Confirm yes unless set
		// errIs is the error wanted (nil: none); usage: a UsageError.
		errIs error
		usage bool
		// result is the one event recorded ("": none), with from and to.
		result   string
		from, to release.Side
		live     release.Color // after
		calls    []string
		// bad and notBad are commits marked BAD, and not, after.
		bad, notBad []string
		// said is what the Reporter printed, in order.
		said []string
		// planUnlocked: the plan was made without the lock (dry run).
		planUnlocked bool
	}{
		{
			name:   "rollback to the off color",
			result: release.ResultOK, from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green, Commit: v1},
			live:  release.Green,
			calls: []string{"state", "plan green 100", "probe green", "apply green 100"},
			bad:   []string{v2}, notBad: []string{v1},
			said: []string{"checking health of green before switching", "switched lb api: blue -> green"},
		},
		{
			name:  "rollback onto a release marked BAD",
			setup: func(t *testing.T, fx *fixture, _ *board) { fx.markBad(t, v1) },
			errIs: store.ErrBadRelease,
			// Refused before a plan: history says what was live.
			result: release.ResultRefused, from: release.Side{Color: release.Blue, Commit: v2},
			live:  release.Blue,
			calls: []string{"state"},
			bad:   []string{v1}, notBad: []string{v2},
		},
		{
			name:   "--force onto a release marked BAD",
			setup:  func(t *testing.T, fx *fixture, _ *board) { fx.markBad(t, v1) },
			req:    SwitchRequest{Force: true},
			result: release.ResultOK, from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green, Commit: v1},
			live: release.Green,
			// --force skips the health gate too.
			calls: []string{"state", "plan green 100", "apply green 100"},
			// Back live by choice: v1 is no longer BAD, v2 is.
			bad: []string{v2}, notBad: []string{v1},
		},
		{
			name: "off color runs a commit the target cannot tell",
			setup: func(t *testing.T, fx *fixture, b *board) {
				b.st.Off.Commit = target.UnknownCommit
				// Were "unknown" looked up as a commit, this would refuse.
				fx.markBad(t, target.UnknownCommit)
			},
			result: release.ResultOK, from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green},
			live:  release.Green,
			calls: []string{"state", "plan green 100", "probe green", "apply green 100"},
			bad:   []string{v2},
		},
		{
			name:   "live color runs a commit the target cannot tell",
			setup:  func(_ *testing.T, _ *fixture, b *board) { b.st.Live.Commit = target.UnknownCommit },
			result: release.ResultOK, from: release.Side{Color: release.Blue}, to: release.Side{Color: release.Green, Commit: v1},
			live:  release.Green,
			calls: []string{"state", "plan green 100", "probe green", "apply green 100"},
			// Nothing to mark: "unknown" is no release.
			notBad: []string{target.UnknownCommit, v1},
		},
		{
			name: "oops off: the preview says what each color runs",
			setup: func(_ *testing.T, _ *fixture, b *board) {
				b.st.Live.Commit, b.st.Off.Commit = target.UnknownCommit, target.UnknownCommit
			},
			req: SwitchRequest{To: release.Green, Action: release.ActionPreview, Command: "oops off", CommitOf: func(c release.Color) string {
				return map[release.Color]string{release.Blue: c0, release.Green: c1}[c]
			}},
			result: release.ResultOK, from: release.Side{Color: release.Blue, Commit: c0}, to: release.Side{Color: release.Green, Commit: c1},
			live:  release.Green,
			calls: []string{"state", "plan green 100", "probe green", "apply green 100"},
			// Not a rollback: nothing marked BAD.
			notBad: []string{c0, c1},
		},
		{
			name: "dry run",
			req:  SwitchRequest{DryRun: true},
			// Nothing recorded; from and to are the plan's.
			from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green, Commit: v1},
			live:         release.Blue,
			calls:        []string{"state", "plan green 100", "probe green"},
			notBad:       []string{v2},
			planUnlocked: true,
		},
		{
			name:   "operator declines",
			req:    SwitchRequest{Confirm: func(*target.Plan) (bool, error) { return false, nil }},
			errIs:  target.ErrAborted,
			result: release.ResultRefused, from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green, Commit: v1},
			live:   release.Blue,
			calls:  []string{"state", "plan green 100", "probe green"},
			notBad: []string{v2},
		},
		{
			name:   "already live",
			req:    SwitchRequest{To: release.Blue, Action: release.ActionPromote, Command: "oops promote"},
			result: release.ResultOK, from: release.Side{Color: release.Blue, Commit: v2},
			live:  release.Blue,
			calls: []string{"state"},
		},
		{
			name: "health gate refuses",
			setup: func(_ *testing.T, _ *fixture, b *board) {
				b.ProbeFunc = func(_ context.Context, c release.Color) error {
					b.log("probe %s", c)
					return fmt.Errorf("%w: GET http://127.0.0.1:8081/healthz: 503 Service Unavailable", target.ErrUnhealthy)
				}
			},
			errIs:  target.ErrUnhealthy,
			result: release.ResultRefused, from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green, Commit: v1},
			live:  release.Blue,
			calls: []string{"state", "plan green 100", "probe green"},
			said:  []string{"checking health of green before switching"},
		},
		{
			name: "verification fails, traffic goes back",
			setup: func(_ *testing.T, _ *fixture, b *board) {
				b.VerifyFunc = func(_ context.Context, c release.Color, _ time.Duration) error {
					b.log("verify %s", c)
					return errors.New("5xx on green")
				}
			},
			req:    SwitchRequest{Verify: time.Minute},
			errIs:  target.ErrVerifyFailed,
			result: release.ResultFailed, from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green, Commit: v1},
			live:  release.Blue,
			calls: []string{"state", "plan green 100", "probe green", "apply green 100", "verify green", "state", "plan blue 100", "apply blue 100"},
			// A rollback that did not stand leaves v2 unmarked.
			notBad: []string{v2},
			said:   []string{"verifying green for up to 1m0s", "green did not become healthy (5xx on green): switching back to blue"},
		},
		{
			name:   "weighted shift",
			req:    SwitchRequest{To: release.Green, Weight: 25, Action: release.ActionShift, Command: "oops shift"},
			result: release.ResultOK, from: release.Side{Color: release.Blue, Commit: v2}, to: release.Side{Color: release.Green, Commit: v1},
			live:   release.Blue,
			calls:  []string{"state", "plan green 25", "probe green", "apply green 25"},
			notBad: []string{v2},
		},
		{
			name:  "--no-lock with the store reachable",
			req:   SwitchRequest{NoLock: true, NoLockOffer: "oops rollback --no-lock"},
			usage: true,
			live:  release.Blue,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			b := newBoard(fx)
			if tt.setup != nil {
				tt.setup(t, fx, b)
			}
			req := tt.req
			if req.Action == "" {
				req.Action, req.Command = release.ActionRollback, "oops rollback"
			}
			req.Reason = "5xx"
			asked := false
			if req.Confirm == nil {
				req.Confirm = func(p *target.Plan) (bool, error) {
					asked = true
					return yes(p)
				}
			}
			res, err := fx.runner().Switch(context.Background(), b, req)

			var ue UsageError
			switch {
			case tt.usage:
				if !errors.As(err, &ue) {
					t.Fatalf("Switch = %v, want a usage error", err)
				}
			case tt.errIs == nil && err != nil:
				t.Fatalf("Switch = %v", err)
			case tt.errIs != nil && !errors.Is(err, tt.errIs):
				t.Fatalf("Switch = %v, want %v", err, tt.errIs)
			}
			if b.st.Live.Color != tt.live {
				t.Errorf("%s live after, want %s", b.st.Live.Color, tt.live)
			}
			if !slices.Equal(b.calls, tt.calls) {
				t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(b.calls, "\n  "), strings.Join(tt.calls, "\n  "))
			}
			// Whatever happened, the lock is gone and history has one
			// event for it (none for a dry run or a refused --no-lock).
			fx.noLockLeft(t)
			evs := fx.history(t)
			if tt.result == "" {
				if len(evs) != 0 {
					t.Errorf("recorded %+v, want nothing", evs)
				}
			} else {
				if len(evs) != 1 {
					t.Fatalf("recorded %d events, want 1: %+v", len(evs), evs)
				}
				ev := evs[0]
				want := release.Event{Action: req.Action, Result: tt.result, From: tt.from, To: tt.to, Target: "lb api", Reason: "5xx", Who: "ada"}
				got := release.Event{Action: ev.Action, Result: ev.Result, From: ev.From, To: ev.To, Target: ev.Target, Reason: ev.Reason, Who: ev.Who}
				if got != want {
					t.Errorf("recorded\n  %+v\nwant\n  %+v", got, want)
				}
				if (err == nil) != (ev.Error == "") {
					t.Errorf("recorded error %q for %v", ev.Error, err)
				}
			}
			for _, c := range tt.bad {
				if !fx.isBad(t, c) {
					t.Errorf("%s not marked BAD", release.Short(c))
				}
			}
			for _, c := range tt.notBad {
				if fx.isBad(t, c) {
					t.Errorf("%s marked BAD", release.Short(c))
				}
			}
			for _, locked := range b.planLocked {
				if locked == tt.planUnlocked {
					t.Errorf("planned with the lock held = %v, want %v", locked, !tt.planUnlocked)
				}
			}
			for i, f := range b.fenced {
				if !f {
					t.Errorf("Apply #%d ran without the lock's fence in its context", i+1)
				}
			}
			applied := slices.ContainsFunc(b.calls, func(c string) bool { return strings.HasPrefix(c, "apply") })
			if applied && !asked && tt.req.Confirm == nil {
				t.Error("applied without asking")
			}
			if tt.errIs == nil && !tt.usage {
				// What cmd prints comes from the result.
				if res == nil || res.Before == nil || res.Before.Live.Color != release.Blue {
					t.Fatalf("result %+v, want the state from before (blue live)", res)
				}
				if tt.to.Color == "" && res.Plan != nil {
					t.Errorf("plan %v, want none: nothing to do", res.Plan)
				}
				if tt.to.Color != "" && (res.Plan == nil || res.Plan.To != tt.to.Color || res.Plan.From != tt.from.Color) {
					t.Errorf("plan %v, want %s -> %s", res.Plan, tt.from.Color, tt.to.Color)
				}
				if req.Weight > 0 && (res.Plan == nil || res.Plan.Weight != req.Weight) {
					t.Errorf("plan %v, want weight %d", res.Plan, req.Weight)
				}
			}
			out := fx.errOut.String()
			for _, s := range tt.said {
				i := strings.Index(out, s+"\n")
				if i < 0 {
					t.Errorf("reporter said:\n%s\nwant the line %q (in order)", fx.errOut, s)
					continue
				}
				out = out[i+len(s):]
			}
		})
	}
}

// TestSwitchDryRunReturnsThePlan: --dry-run prints the plan Switch
// returns, with the steps the target would run.
func TestSwitchDryRunReturnsThePlan(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	b := newBoard(fx)
	b.ApplyFunc = nil // Apply must not be called: the mock panics
	res, err := fx.runner().Switch(context.Background(), b, SwitchRequest{DryRun: true, Action: release.ActionRollback,
		Confirm: func(*target.Plan) (bool, error) { t.Error("a dry run asked for confirmation"); return false, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan == nil || res.Plan.From != release.Blue || res.Plan.To != release.Green || !slices.Equal(res.Plan.Steps, []string{"send 100% to green"}) {
		t.Fatalf("plan %+v, want blue -> green with the target's steps", res.Plan)
	}
}

// TestSwitchNoLockNeverRuns: --no-lock with the store reachable is refused
// before the target is read, and says to run without it.
func TestSwitchNoLockNeverRuns(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	b := &board{} // every call panics
	_, err := fx.runner().Switch(context.Background(), b, SwitchRequest{NoLock: true, NoLockOffer: "oops rollback --no-lock", Action: release.ActionRollback})
	if ResultOf(err) != release.ResultRefused {
		t.Errorf("%v would be recorded %s, want refused", err, ResultOf(err))
	}
	if want := "--no-lock: the store " + fx.st.String() + " can be reached, so oops rollback takes the lock"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if h := hintOf(err); !strings.Contains(h, "without --no-lock") {
		t.Errorf("hint %q, want it to say to run without --no-lock", h)
	}
	fx.noLockLeft(t)
}

// TestSwitchResumeNothingToDo: a rollback that finds an interrupted switch
// already settled (the plan to finish it is nil) changes nothing, so it
// must not mark the live release BAD.
func TestSwitchResumeNothingToDo(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	b := newBoard(fx)
	b.StateFunc = func(context.Context) (*target.State, error) {
		b.log("state")
		st := b.st
		st.Pending = &target.Intent{From: release.Green, To: release.Blue}
		return &st, fmt.Errorf("lb api: a switch was interrupted: %w", target.ErrInconsistent)
	}
	b.PlanRepairFunc = func(context.Context, release.Color) (*target.Plan, error) {
		b.log("plan repair")
		return nil, nil
	}
	res, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionRollback, Confirm: yes})
	if err != nil || res.Plan != nil {
		t.Fatalf("Switch = %+v, %v; want nothing to do", res, err)
	}
	if fx.isBad(t, v2) {
		t.Errorf("a rollback that changed nothing marked the live release %s BAD", release.Short(v2))
	}
}

func TestRefuseBad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		off     target.ColorState
		bad     string // commit marked BAD before
		refused bool
		warns   string
	}{
		{name: "off color runs a good release", off: target.ColorState{Color: release.Green, Commit: v1}, bad: v2},
		{name: "off color runs a BAD release", off: target.ColorState{Color: release.Green, Commit: v1}, bad: v1, refused: true},
		{name: "commit unknown", off: target.ColorState{Color: release.Green, Commit: target.UnknownCommit}, bad: target.UnknownCommit},
		{name: "no commit", off: target.ColorState{Color: release.Green}, bad: ""},
		{name: "install never passed its health check", off: target.ColorState{Color: release.Green, Commit: v1, Installing: true},
			warns: "oops: green runs 1111111, whose install never passed its health check: the health gate decides (oops status shows it)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			fx.markBad(t, tt.bad)
			st := &target.State{Live: target.ColorState{Color: release.Blue, Commit: v2}, Off: tt.off}
			err := fx.runner().RefuseBad(context.Background(), st, release.Green)
			if !tt.refused {
				if err != nil {
					t.Fatalf("RefuseBad = %v, want nil", err)
				}
			} else {
				if !errors.Is(err, store.ErrBadRelease) || !strings.HasPrefix(err.Error(), "refusing to roll back to green: ") {
					t.Fatalf("RefuseBad = %v, want a refusal naming green, ErrBadRelease", err)
				}
				if h := hintOf(err); !strings.Contains(h, "oops rollback --to REV") || !strings.Contains(h, "--force") {
					t.Errorf("hint %q, want --to REV and --force", h)
				}
			}
			if got := fx.errOut.String(); got != tt.warns {
				t.Errorf("reporter said %q, want %q", got, tt.warns)
			}
		})
	}
}

// proxiedBoard is a target whose traffic goes through an oops proxy.
type proxiedBoard struct {
	mock.Target
	up  bool
	err error
}

func (p *proxiedBoard) ProxyRunning(context.Context) (bool, error) { return p.up, p.err }

func TestPreflight(t *testing.T) {
	t.Parallel()
	errOpen := errors.New("open target: no such load balancer")
	tests := []struct {
		name       string
		tgt        target.Target
		openErr    error
		notServing string // "": serving
		hint       string
	}{
		{name: "no proxy to ask", tgt: &mock.Target{Name: "lb api"}},
		{name: "proxy running", tgt: &proxiedBoard{Target: mock.Target{Name: "local api"}, up: true}},
		{name: "no proxy running", tgt: &proxiedBoard{Target: mock.Target{Name: "local api"}},
			notServing: "no oops proxy is running for local api: nothing takes traffic there, a switch only records the color the proxy starts with",
			hint:       "start it with: oops proxy (under systemd or your supervisor); see the Local target section of the README"},
		{name: "proxy cannot be asked", tgt: &proxiedBoard{Target: mock.Target{Name: "local api"}, err: errors.New("read pid file: permission denied")},
			notServing: "ask oops proxy: read pid file: permission denied"},
		{name: "target does not open", openErr: errOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			fx.d.Target = func(context.Context) (target.Target, error) { return tt.tgt, tt.openErr }
			p, err := fx.runner().Preflight(context.Background())
			if tt.openErr != nil {
				if !errors.Is(err, tt.openErr) || p != nil {
					t.Fatalf("Preflight = %+v, %v; want %v", p, err, tt.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Target != tt.tgt {
				t.Errorf("Preflight's target %v, want the one opened", p.Target)
			}
			switch {
			case tt.notServing == "" && p.NotServing != nil:
				t.Errorf("NotServing = %v, want nil", p.NotServing)
			case tt.notServing != "" && (p.NotServing == nil || p.NotServing.Error() != tt.notServing):
				t.Errorf("NotServing = %v, want %q", p.NotServing, tt.notServing)
			}
			if h := hintOf(p.NotServing); h != tt.hint {
				t.Errorf("hint %q, want %q", h, tt.hint)
			}
		})
	}
}
