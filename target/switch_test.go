package target_test

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
	"github.com/oops-deploy/oops/target"
)

// fake is a mock.RepairTarget that switches a State in memory and logs
// every call, so that a test states the calls it expects in order. Tests
// replace the funcs whose answers they change.
type fake struct {
	mock.RepairTarget
	st    *target.State
	calls []string
}

// newFake has blue live with all the traffic, green off.
func newFake() *fake {
	f := &fake{st: &target.State{
		Live: target.ColorState{Color: release.Blue, Weight: 100},
		Off:  target.ColorState{Color: release.Green},
	}}
	f.StateFunc = func(context.Context) (*target.State, error) {
		f.log("state")
		st := *f.st
		return &st, nil
	}
	f.PlanFunc = func(_ context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
		f.log("plan %s %d", to, weight)
		return f.plan(st.Live.Color, to, weight), nil
	}
	f.ApplyFunc = func(ctx context.Context, p *target.Plan) error { return p.Run(ctx) }
	f.ProbeFunc = func(_ context.Context, c release.Color) error {
		f.log("probe %s", c)
		return nil
	}
	f.VerifyFunc = func(_ context.Context, c release.Color, _ time.Duration) error {
		f.log("verify %s", c)
		return nil
	}
	return f
}

func (f *fake) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// plan is a plan whose Run moves weight percent of the traffic to to.
func (f *fake) plan(from, to release.Color, weight int) *target.Plan {
	return target.NewPlan(from, to, weight, []string{"move"}, func(context.Context) error {
		f.log("apply %s %d", to, weight)
		if weight == 100 && f.st.Live.Color != to {
			f.st.Live, f.st.Off = f.st.Off, f.st.Live
		}
		f.st.Live.Weight, f.st.Off.Weight = 100, 0
		if weight < 100 {
			f.st.Live.Weight, f.st.Off.Weight = 100-weight, weight
			if f.st.Live.Color == to {
				f.st.Live.Weight, f.st.Off.Weight = weight, 100-weight
			}
		}
		return nil
	})
}

func (f *fake) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(f.calls, "\n  "), strings.Join(want, "\n  "))
	}
}

// plain is the fake as a target.Target only: no RepairPlanner to find.
func (f *fake) plain() *mock.Target { return &f.Target }

var errBoom = errors.New("boom")

func TestSwitchFull(t *testing.T) {
	f := newFake()
	var logged []string
	res, err := target.Switch(t.Context(), f, target.SwitchOptions{
		VerifyTimeout: time.Minute,
		Logf:          func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || res.Reverted || res.Plan == nil || res.Plan.From != release.Blue || res.Plan.To != release.Green {
		t.Errorf("result %+v, plan %+v; want switched blue -> green", res, res.Plan)
	}
	if res.Before.Live.Color != release.Blue {
		t.Errorf("Before has %s live, want the state read before the switch (blue)", res.Before.Live.Color)
	}
	f.wantCalls(t, "state", "plan green 100", "probe green", "apply green 100", "verify green")
	if !slices.Contains(logged, "switched mock: blue -> green") {
		t.Errorf("progress does not say the switch was made: %q", logged)
	}
}

// Each way a switch stops before the change leaves the target untouched,
// and each way it stops after says what stands.
func TestSwitchStops(t *testing.T) {
	tests := []struct {
		name  string
		opts  target.SwitchOptions
		setup func(f *fake)
		// want: the calls made; errIs and errHas: the error (nil: none).
		want     []string
		errIs    error
		errHas   []string
		switched bool
		noPlan   bool
		noResult bool
	}{
		{
			name:  "state unreadable",
			setup: func(f *fake) { f.StateFunc = func(context.Context) (*target.State, error) { return nil, errBoom } },
			want:  nil, errIs: errBoom, noResult: true,
		},
		{
			name:   "already live",
			opts:   target.SwitchOptions{To: release.Blue},
			want:   []string{"state"},
			noPlan: true,
		},
		{
			name:   "check refuses",
			opts:   target.SwitchOptions{Check: func(*target.State, release.Color) error { return errBoom }},
			want:   []string{"state"},
			errIs:  errBoom,
			noPlan: true,
		},
		{
			name: "plan fails",
			setup: func(f *fake) {
				f.PlanFunc = func(context.Context, *target.State, release.Color, int) (*target.Plan, error) { return nil, errBoom }
			},
			want: []string{"state"}, errIs: errBoom, noPlan: true,
		},
		{
			name: "health gate refuses",
			setup: func(f *fake) {
				f.ProbeFunc = func(_ context.Context, c release.Color) error {
					f.log("probe %s", c)
					return fmt.Errorf("%w: no answer", target.ErrUnhealthy)
				}
			},
			want:   []string{"state", "plan green 100", "probe green"},
			errIs:  target.ErrUnhealthy,
			errHas: []string{"refusing to switch to green: unhealthy: no answer (use --force to switch anyway)"},
		},
		{
			name: "force skips the health gate",
			opts: target.SwitchOptions{Force: true},
			setup: func(f *fake) {
				f.ProbeFunc = nil // panics if called
			},
			want:     []string{"state", "plan green 100", "apply green 100"},
			switched: true,
		},
		{
			name: "dry run",
			opts: target.SwitchOptions{DryRun: true, VerifyTimeout: time.Minute},
			want: []string{"state", "plan green 100", "probe green"},
		},
		{
			name:  "declined",
			opts:  target.SwitchOptions{Confirm: func(*target.Plan) (bool, error) { return false, nil }},
			want:  []string{"state", "plan green 100", "probe green"},
			errIs: target.ErrAborted,
		},
		{
			name:  "confirmation fails",
			opts:  target.SwitchOptions{Confirm: func(*target.Plan) (bool, error) { return false, errBoom }},
			want:  []string{"state", "plan green 100", "probe green"},
			errIs: errBoom,
		},
		{
			name: "apply fails",
			opts: target.SwitchOptions{VerifyTimeout: time.Minute},
			setup: func(f *fake) {
				f.ApplyFunc = func(context.Context, *target.Plan) error {
					f.log("apply")
					return errBoom
				}
			},
			want:  []string{"state", "plan green 100", "probe green", "apply"},
			errIs: errBoom,
		},
		{
			name:     "confirmed",
			opts:     target.SwitchOptions{Confirm: func(*target.Plan) (bool, error) { return true, nil }},
			want:     []string{"state", "plan green 100", "probe green", "apply green 100"},
			switched: true,
		},
		{
			name:     "weight",
			opts:     target.SwitchOptions{To: release.Green, Weight: 10, Force: true},
			want:     []string{"state", "plan green 10", "apply green 10"},
			switched: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			if tt.setup != nil {
				tt.setup(f)
			}
			res, err := target.Switch(t.Context(), f, tt.opts)
			switch {
			case tt.errIs == nil && err != nil:
				t.Fatalf("Switch = %v, want no error", err)
			case tt.errIs != nil && !errors.Is(err, tt.errIs):
				t.Fatalf("Switch = %v, want %v", err, tt.errIs)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			f.wantCalls(t, tt.want...)
			if res == nil || tt.noResult {
				if res != nil || !tt.noResult {
					t.Fatalf("result %+v, want one: %v", res, !tt.noResult)
				}
				return
			}
			if res.Switched != tt.switched || res.Reverted {
				t.Errorf("switched %v reverted %v, want switched %v", res.Switched, res.Reverted, tt.switched)
			}
			if (res.Plan == nil) != tt.noPlan {
				t.Errorf("plan %v, want a plan: %v", res.Plan, !tt.noPlan)
			}
		})
	}
}

// A new color that does not hold up is switched away from, with a fresh
// read of the target; when that fails too the error says so, and what to
// run.
func TestSwitchVerifyFails(t *testing.T) {
	verifyFails := func(f *fake) {
		f.VerifyFunc = func(_ context.Context, c release.Color, _ time.Duration) error {
			f.log("verify %s", c)
			return errors.New("2 of 2 instances OutOfService")
		}
	}
	tests := []struct {
		name     string
		setup    func(f *fake)
		want     []string
		errHas   string
		reverted bool
		live     release.Color
	}{
		{
			name:     "switched back",
			setup:    verifyFails,
			want:     []string{"state", "plan green 100", "probe green", "apply green 100", "verify green", "state", "plan blue 100", "apply blue 100"},
			errHas:   "verification failed: green: 2 of 2 instances OutOfService; traffic is back on blue",
			reverted: true,
			live:     release.Blue,
		},
		{
			name: "switching back fails at State",
			setup: func(f *fake) {
				verifyFails(f)
				state := f.StateFunc
				f.StateFunc = func(ctx context.Context) (*target.State, error) {
					if slices.Contains(f.calls, "verify green") {
						f.log("state")
						return nil, errBoom
					}
					return state(ctx)
				}
			},
			want:   []string{"state", "plan green 100", "probe green", "apply green 100", "verify green", "state"},
			errHas: "verification failed: 2 of 2 instances OutOfService; switching back failed: boom",
			live:   release.Green,
		},
		{
			name: "switching back fails at Plan",
			setup: func(f *fake) {
				verifyFails(f)
				plan := f.PlanFunc
				f.PlanFunc = func(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
					if to == release.Blue {
						f.log("plan %s %d", to, weight)
						return nil, errBoom
					}
					return plan(ctx, st, to, weight)
				}
			},
			want:   []string{"state", "plan green 100", "probe green", "apply green 100", "verify green", "state", "plan blue 100"},
			errHas: "verification failed: 2 of 2 instances OutOfService; switching back failed: boom (run oops repair)",
			live:   release.Green,
		},
		{
			name: "switching back fails at Apply",
			setup: func(f *fake) {
				verifyFails(f)
				f.ApplyFunc = func(ctx context.Context, p *target.Plan) error {
					if p.To == release.Blue {
						f.log("apply blue")
						return errBoom
					}
					return p.Run(ctx)
				}
			},
			want:   []string{"state", "plan green 100", "probe green", "apply green 100", "verify green", "state", "plan blue 100", "apply blue"},
			errHas: "verification failed: 2 of 2 instances OutOfService; switching back failed: boom (run oops repair)",
			live:   release.Green,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.setup(f)
			res, err := target.Switch(t.Context(), f, target.SwitchOptions{VerifyTimeout: time.Minute})
			if !errors.Is(err, target.ErrVerifyFailed) {
				t.Fatalf("Switch = %v, want ErrVerifyFailed", err)
			}
			if err.Error() != tt.errHas {
				t.Errorf("error\n  %q\nwant\n  %q", err, tt.errHas)
			}
			if !res.Switched || res.Reverted != tt.reverted {
				t.Errorf("switched %v reverted %v, want switched, reverted %v", res.Switched, res.Reverted, tt.reverted)
			}
			f.wantCalls(t, tt.want...)
			if f.st.Live.Color != tt.live {
				t.Errorf("%s live, want %s", f.st.Live.Color, tt.live)
			}
		})
	}
}

// The switch back does not use the operator's context: its deadline may be
// what ended the verification.
func TestSwitchBackOutlivesTheDeadline(t *testing.T) {
	f := newFake()
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	f.VerifyFunc = func(context.Context, release.Color, time.Duration) error {
		f.log("verify")
		return errors.New("not healthy")
	}
	f.ApplyFunc = func(actx context.Context, p *target.Plan) error {
		if p.To == release.Blue {
			if actx.Err() != nil {
				t.Errorf("switch back with a context already done: %v", actx.Err())
			}
			if d, ok := actx.Deadline(); !ok || !d.Before(time.Now().Add(time.Hour)) {
				t.Errorf("switch back deadline %v (set: %v), want its own, shorter than the operator's", d, ok)
			}
		}
		return p.Run(actx)
	}
	if _, err := target.Switch(ctx, f, target.SwitchOptions{VerifyTimeout: time.Minute}); !errors.Is(err, target.ErrVerifyFailed) {
		t.Fatalf("Switch = %v, want ErrVerifyFailed", err)
	}
	if f.st.Live.Color != release.Blue {
		t.Errorf("%s live, want blue", f.st.Live.Color)
	}
}

// Ctrl-C during verification says nothing about the new color: the switch
// stands, unverified, and nothing is switched back.
func TestSwitchVerifyInterrupted(t *testing.T) {
	f := newFake()
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	stop := errors.New("interrupt")
	f.VerifyFunc = func(vctx context.Context, c release.Color, _ time.Duration) error {
		f.log("verify %s", c)
		cancel(stop)
		return vctx.Err()
	}
	res, err := target.Switch(ctx, f, target.SwitchOptions{VerifyTimeout: time.Minute})
	if !errors.Is(err, target.ErrVerifyInterrupted) || errors.Is(err, target.ErrVerifyFailed) {
		t.Fatalf("Switch = %v, want ErrVerifyInterrupted only", err)
	}
	if want := "green: verification interrupted, the switch stands (green is live): interrupt"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, stop) {
		t.Errorf("error %v does not wrap the cause", err)
	}
	if !res.Switched || res.Reverted {
		t.Errorf("switched %v reverted %v, want switched, not reverted", res.Switched, res.Reverted)
	}
	f.wantCalls(t, "state", "plan green 100", "probe green", "apply green 100", "verify green")
}

// During a canary (traffic split, Base set) a rollback goes back to the
// base color, whichever color has more traffic; a canary step that fails
// verification restores the split exactly.
func TestSwitchCanary(t *testing.T) {
	canary := func(f *fake) {
		// 70% still on blue, where the canary started.
		f.st.Live.Weight, f.st.Off.Weight = 70, 30
		f.st.Base = release.Blue
	}
	t.Run("rollback goes to the base", func(t *testing.T) {
		f := newFake()
		canary(f)
		res, err := target.Switch(t.Context(), f, target.SwitchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan.To != release.Blue || res.Plan.Weight != 100 {
			t.Errorf("plan %+v, want all traffic back on blue", res.Plan)
		}
		f.wantCalls(t, "state", "plan blue 100", "probe blue", "apply blue 100")
	})
	t.Run("a failed step restores the split", func(t *testing.T) {
		f := newFake()
		canary(f)
		f.VerifyFunc = func(_ context.Context, c release.Color, _ time.Duration) error {
			f.log("verify %s", c)
			return errors.New("5xx")
		}
		res, err := target.Switch(t.Context(), f, target.SwitchOptions{To: release.Green, Weight: 50, VerifyTimeout: time.Minute})
		if !errors.Is(err, target.ErrVerifyFailed) || !res.Reverted {
			t.Fatalf("Switch = %+v, %v; want reverted, ErrVerifyFailed", res, err)
		}
		if want := "verification failed: green: 5xx; traffic is back on the split it had (30% on green)"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		f.wantCalls(t, "state", "plan green 50", "probe green", "apply green 50", "verify green", "state", "plan green 30", "apply green 30")
		if f.st.Color(release.Green).Weight != 30 {
			t.Errorf("green has %d%%, want the 30%% it had", f.st.Color(release.Green).Weight)
		}
	})
}

// interrupted makes the fake's State report a switch blue -> green that
// stopped half-way, as backends do: the state, Pending, and an error.
func interrupted(f *fake) error {
	perr := fmt.Errorf("%w: a switch to green was interrupted", target.ErrInconsistent)
	f.st.Pending = &target.Intent{From: release.Blue, To: release.Green}
	f.StateFunc = func(context.Context) (*target.State, error) {
		f.log("state")
		st := *f.st
		if st.Pending != nil {
			return &st, perr
		}
		return &st, nil
	}
	f.PlanRepairFunc = func(_ context.Context, to release.Color) (*target.Plan, error) {
		f.log("plan repair %s", to)
		p := f.plan(release.Blue, to, 100)
		return target.NewPlan(p.From, p.To, 100, p.Steps, func(ctx context.Context) error {
			f.st.Pending = nil
			return p.Run(ctx)
		}), nil
	}
	return perr
}

// An interrupted switch: with Resume and a RepairPlanner it is finished
// through PlanRepair, with the health gate, confirmation and verification
// of any switch; otherwise State's error is returned as it is.
func TestSwitchResume(t *testing.T) {
	t.Run("finished toward the pending color", func(t *testing.T) {
		f := newFake()
		interrupted(f)
		confirmed := false
		res, err := target.Switch(t.Context(), f, target.SwitchOptions{
			Resume: true, VerifyTimeout: time.Minute,
			Confirm: func(p *target.Plan) (bool, error) { confirmed = p.To == release.Green; return true, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Switched || res.Plan == nil || res.Plan.To != release.Green || res.Before.Pending == nil {
			t.Errorf("result %+v; want switched to green, Before with the pending switch", res)
		}
		if !confirmed {
			t.Error("the repair plan was not confirmed")
		}
		f.wantCalls(t, "state", "plan repair green", "probe green", "apply green 100", "verify green")
	})
	t.Run("To overrides the pending color", func(t *testing.T) {
		f := newFake()
		interrupted(f)
		if _, err := target.Switch(t.Context(), f, target.SwitchOptions{Resume: true, To: release.Blue}); err != nil {
			t.Fatal(err)
		}
		f.wantCalls(t, "state", "plan repair blue", "probe blue", "apply blue 100")
	})
	t.Run("nothing left to repair", func(t *testing.T) {
		f := newFake()
		interrupted(f)
		f.PlanRepairFunc = func(context.Context, release.Color) (*target.Plan, error) {
			f.log("plan repair")
			return nil, nil
		}
		res, err := target.Switch(t.Context(), f, target.SwitchOptions{Resume: true})
		if err != nil || res.Plan != nil || res.Switched {
			t.Errorf("Switch = %+v, %v; want no plan, no error", res, err)
		}
		f.wantCalls(t, "state", "plan repair")
	})
	t.Run("repair cannot be planned", func(t *testing.T) {
		f := newFake()
		interrupted(f)
		f.PlanRepairFunc = func(context.Context, release.Color) (*target.Plan, error) { return nil, errBoom }
		res, err := target.Switch(t.Context(), f, target.SwitchOptions{Resume: true})
		if !errors.Is(err, errBoom) || res == nil || res.Before == nil || res.Switched {
			t.Errorf("Switch = %+v, %v; want the planning error with the state read", res, err)
		}
	})
	for _, tt := range []struct {
		name string
		tgt  func(f *fake) target.Target
		opts target.SwitchOptions
	}{
		{"without Resume", func(f *fake) target.Target { return f }, target.SwitchOptions{}},
		{"without a RepairPlanner", func(f *fake) target.Target { return f.plain() }, target.SwitchOptions{Resume: true}},
	} {
		t.Run("refused "+tt.name, func(t *testing.T) {
			f := newFake()
			perr := interrupted(f)
			res, err := target.Switch(t.Context(), tt.tgt(f), tt.opts)
			if err != perr {
				t.Errorf("Switch = %v, want State's error as it is (%v)", err, perr)
			}
			if res == nil || res.Before == nil || res.Before.Pending == nil || res.Plan != nil {
				t.Errorf("result %+v, want the state read and no plan", res)
			}
			f.wantCalls(t, "state")
		})
	}
	t.Run("an error without a pending switch", func(t *testing.T) {
		f := newFake()
		f.StateFunc = func(context.Context) (*target.State, error) {
			f.log("state")
			return &target.State{}, target.ErrMisconfigured
		}
		_, err := target.Switch(t.Context(), f, target.SwitchOptions{Resume: true})
		if err != target.ErrMisconfigured {
			t.Errorf("Switch = %v, want State's error as it is", err)
		}
		f.wantCalls(t, "state")
	})
}

// Finishing an interrupted switch does not ask Check: whether to refuse
// that switch (or --force it) was decided when it started, under its own
// lock, and a load balancer left half-switched must be brought to one
// color whatever it runs. The health gate still applies.
func TestSwitchResumeDoesNotCheck(t *testing.T) {
	f := newFake()
	interrupted(f)
	check := func(*target.State, release.Color) error {
		t.Error("Check called on resume")
		return errBoom
	}
	if _, err := target.Switch(t.Context(), f, target.SwitchOptions{Resume: true, Check: check}); err != nil {
		t.Fatal(err)
	}
	f.wantCalls(t, "state", "plan repair green", "probe green", "apply green 100")
}
