package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// halfSwitched makes b a target left half-way from blue to green: State
// says so, and the repair plan puts all traffic on to (green when "").
func halfSwitched(b *board) {
	b.StateFunc = func(context.Context) (*target.State, error) {
		b.log("state")
		st := b.st
		st.Pending = &target.Intent{From: release.Blue, To: release.Green}
		return &st, fmt.Errorf("lb api: a switch from blue to green was interrupted: %w", target.ErrInconsistent)
	}
	b.PlanRepairFunc = func(_ context.Context, to release.Color) (*target.Plan, error) {
		b.log("plan repair %s", to)
		if to == "" {
			to = release.Green
		}
		return b.plan(to.Other(), to, 100), nil
	}
}

// consistent makes b a target with nothing to repair.
func consistent(b *board) {
	b.PlanRepairFunc = func(_ context.Context, to release.Color) (*target.Plan, error) {
		b.log("plan repair %s", to)
		return nil, nil
	}
}

// errThrottled is a backend's error the workflow passes on as it is.
var errThrottled = errors.New("describe listeners: throttled")

func TestRepair(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(b *board)
		req   RepairRequest // Reason "half-switched"
		// decline answers no to the confirmation.
		decline bool
		errIs   error
		usage   bool
		// asked: the plan the operator was asked about (To; "" not asked).
		asked release.Color
		// result is the one event recorded ("": none), with from and to.
		result   string
		from, to release.Color
		live     release.Color // after
		calls    []string
		// out is what Repair returns: the plan's To, and Live.
		planTo, outLive release.Color
		hint            string
	}{
		{
			name:   "half-switched: confirmed and applied",
			setup:  halfSwitched,
			asked:  release.Green,
			result: release.ResultOK, from: release.Blue, to: release.Green,
			live:   release.Green,
			calls:  []string{"plan repair ", "apply green 100"},
			planTo: release.Green,
		},
		{
			name:   "half-switched, --to undoes it",
			setup:  halfSwitched,
			req:    RepairRequest{To: release.Blue},
			asked:  release.Blue,
			result: release.ResultOK, from: release.Green, to: release.Blue,
			// State is read first, to refuse --to on a consistent target.
			calls:  []string{"state", "plan repair blue", "apply blue 100"},
			live:   release.Blue,
			planTo: release.Blue,
		},
		{
			name:    "operator declines",
			setup:   halfSwitched,
			decline: true,
			errIs:   target.ErrAborted,
			asked:   release.Green,
			result:  release.ResultRefused, from: release.Blue, to: release.Green,
			live:   release.Blue,
			calls:  []string{"plan repair "},
			planTo: release.Green,
		},
		{
			name:   "dry run",
			setup:  halfSwitched,
			req:    RepairRequest{DryRun: true},
			live:   release.Blue,
			calls:  []string{"plan repair "},
			planTo: release.Green,
		},
		{
			name:    "nothing to repair",
			setup:   consistent,
			result:  release.ResultOK,
			live:    release.Blue,
			calls:   []string{"plan repair ", "state"},
			outLive: release.Blue,
		},
		{
			name: "target cannot plan the repair",
			setup: func(b *board) {
				b.PlanRepairFunc = func(context.Context, release.Color) (*target.Plan, error) {
					b.log("plan repair")
					return nil, errThrottled
				}
			},
			errIs:  errThrottled,
			result: release.ResultFailed,
			live:   release.Blue,
			calls:  []string{"plan repair"},
		},
		{
			name:  "--to on a consistent target with the other color live",
			setup: consistent,
			req:   RepairRequest{To: release.Green},
			usage: true,
			live:  release.Blue,
			calls: []string{"state"},
			hint:  "to send traffic to green, run oops rollback",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			b := newBoard(fx)
			tt.setup(b)
			req := tt.req
			req.Reason = "half-switched"
			var asked release.Color
			req.Confirm = func(p *target.Plan) (bool, error) {
				if p == nil {
					t.Error("asked to confirm without the plan")
					return false, nil
				}
				asked = p.To
				return !tt.decline, nil
			}
			out, err := fx.runner().Repair(context.Background(), b, req)

			var ue UsageError
			switch {
			case tt.usage:
				if !errors.As(err, &ue) {
					t.Fatalf("Repair = %v, want a usage error", err)
				}
			case tt.errIs == nil && err != nil:
				t.Fatalf("Repair = %v", err)
			case tt.errIs != nil && !errors.Is(err, tt.errIs):
				t.Fatalf("Repair = %v, want %v", err, tt.errIs)
			}
			if h := hintOf(err); h != tt.hint {
				t.Errorf("hint %q, want %q", h, tt.hint)
			}
			if asked != tt.asked {
				t.Errorf("asked to confirm leaving %q live, want %q", asked, tt.asked)
			}
			if b.st.Live.Color != tt.live {
				t.Errorf("%s live after, want %s", b.st.Live.Color, tt.live)
			}
			if !slices.Equal(b.calls, tt.calls) {
				t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(b.calls, "\n  "), strings.Join(tt.calls, "\n  "))
			}
			for i, f := range b.fenced {
				if !f {
					t.Errorf("Apply #%d ran without the lock's fence in its context", i+1)
				}
			}
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
				want := release.Event{Action: release.ActionRepair, Result: tt.result, From: release.Side{Color: tt.from}, To: release.Side{Color: tt.to},
					Target: "lb api", Reason: "half-switched", Who: "ada"}
				got := release.Event{Action: ev.Action, Result: ev.Result, From: ev.From, To: ev.To, Target: ev.Target, Reason: ev.Reason, Who: ev.Who}
				if got != want {
					t.Errorf("recorded\n  %+v\nwant\n  %+v", got, want)
				}
			}
			if err != nil {
				return
			}
			var planTo release.Color
			if out.Plan != nil {
				planTo = out.Plan.To
			}
			if planTo != tt.planTo || out.Live != tt.outLive || out.Message != "" {
				t.Errorf("outcome plan to %q, live %q, message %q; want plan to %q, live %q", planTo, out.Live, out.Message, tt.planTo, tt.outLive)
			}
		})
	}
}

// TestRepairWithoutPlan: a target that repairs without a plan (not a
// RepairPlanner) is asked to repair after a confirmation about it, and
// what it says is returned; it cannot preview or be told a color.
func TestRepairWithoutPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		req      RepairRequest
		decline  bool
		repaired bool
		errIs    error
		usage    bool
		result   string
	}{
		{name: "repaired", repaired: true, result: release.ResultOK},
		{name: "operator declines", decline: true, errIs: target.ErrAborted, result: release.ResultRefused},
		{name: "--dry-run", req: RepairRequest{DryRun: true}, usage: true},
		// The live color: past the refusal of --to on a consistent target.
		{name: "--to", req: RepairRequest{To: release.Blue}, usage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			b := newBoard(fx)
			repaired := false
			b.RepairFunc = func(ctx context.Context) (string, error) {
				repaired = true
				if target.FenceOf(ctx) == nil {
					t.Error("Repair ran without the lock's fence in its context")
				}
				return "removed the stale listener rule on :8443", nil
			}
			req := tt.req
			req.Reason = "hand-edited"
			asked := false
			req.Confirm = func(p *target.Plan) (bool, error) {
				if p != nil {
					t.Errorf("asked about plan %v, want none", p)
				}
				asked = true
				return !tt.decline, nil
			}
			out, err := fx.runner().Repair(context.Background(), b.plain(), req)

			var ue UsageError
			switch {
			case tt.usage:
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot preview a repair or be told a color") {
					t.Fatalf("Repair = %v, want a usage error", err)
				}
			case tt.errIs == nil && err != nil:
				t.Fatalf("Repair = %v", err)
			case tt.errIs != nil && !errors.Is(err, tt.errIs):
				t.Fatalf("Repair = %v, want %v", err, tt.errIs)
			}
			if repaired != tt.repaired {
				t.Errorf("repaired = %v, want %v", repaired, tt.repaired)
			}
			if asked == tt.usage {
				t.Errorf("asked to confirm = %v, want %v", asked, !tt.usage)
			}
			if tt.repaired && out.Message != "removed the stale listener rule on :8443" {
				t.Errorf("message %q, want the target's", out.Message)
			}
			fx.noLockLeft(t)
			evs := fx.history(t)
			if tt.result == "" {
				if len(evs) != 0 {
					t.Errorf("recorded %+v, want nothing", evs)
				}
				return
			}
			if len(evs) != 1 || evs[0].Action != release.ActionRepair || evs[0].Result != tt.result || evs[0].Target != "lb api" || evs[0].Reason != "hand-edited" {
				t.Errorf("recorded %+v, want one repair %s on lb api", evs, tt.result)
			}
		})
	}
}
