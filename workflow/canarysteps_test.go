package workflow

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// weighted is a target that splits traffic by weight and counts each
// color's requests: every reading adds 100 requests to green, 35 of them
// 5xx once green has failAt percent or more (0: never).
type weighted struct {
	mock.Target
	mu     sync.Mutex
	green  int           // green's share
	base   release.Color // set while split
	failAt int
	reqs   uint64
	errs   uint64
	// blueErrs and greenErrs, when set, are each color's 5xx of every 100
	// requests, whatever the weights (for comparisons).
	blueErrs, greenErrs uint64
	blue                [2]uint64
	steps               []int // every weight applied
	commit              map[release.Color]string
}

func newWeighted(failAt int) *weighted {
	w := &weighted{failAt: failAt, commit: map[release.Color]string{release.Blue: shaA, release.Green: shaB}}
	w.Name = "weighted lb"
	w.StateFunc = func(context.Context) (*target.State, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		cs := func(c release.Color, weight int) target.ColorState {
			return target.ColorState{Color: c, Commit: w.commit[c], Weight: weight}
		}
		st := &target.State{Kind: "mock", Name: "lb", Base: w.base, Live: cs(release.Blue, 100-w.green), Off: cs(release.Green, w.green)}
		if w.green > 50 {
			st.Live, st.Off = st.Off, st.Live
		}
		return st, nil
	}
	w.PlanFunc = func(_ context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
		return target.NewPlan(st.Live.Color, to, weight, []string{"weights"}, func(context.Context) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			g := weight
			if to == release.Blue {
				g = 100 - weight
			}
			if g != 0 && g != 100 && w.base == "" {
				w.base = release.Blue
			}
			if g == 0 || g == 100 {
				w.base = ""
			}
			w.green = g
			w.steps = append(w.steps, g)
			return nil
		}), nil
	}
	w.ApplyFunc = func(ctx context.Context, p *target.Plan) error { return p.Run(ctx) }
	w.ProbeFunc = func(context.Context, release.Color) error { return nil }
	w.VerifyFunc = func(context.Context, release.Color, time.Duration) error { return nil }
	w.SetCommitFunc = func(_ context.Context, c release.Color, sha string) error {
		w.mu.Lock()
		w.commit[c] = sha
		w.mu.Unlock()
		return nil
	}
	return w
}

func (w *weighted) Counts(_ context.Context, c release.Color) (*target.Counts, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.blueErrs+w.greenErrs > 0 {
		if c == release.Blue {
			w.blue[0], w.blue[1] = w.blue[0]+100, w.blue[1]+w.blueErrs
			return &target.Counts{Requests: w.blue[0], ServerErrors: w.blue[1], Bounds: []float64{1}, Buckets: []uint64{w.blue[0], w.blue[0]}}, nil
		}
		w.reqs, w.errs = w.reqs+100, w.errs+w.greenErrs
		return &target.Counts{Requests: w.reqs, ServerErrors: w.errs, Bounds: []float64{1}, Buckets: []uint64{w.reqs, w.reqs}}, nil
	}
	if c == release.Green {
		w.reqs += 100
		if w.failAt > 0 && w.green >= w.failAt {
			w.errs += 35
		}
	}
	return &target.Counts{Requests: w.reqs, ServerErrors: w.errs, Bounds: []float64{1}, Buckets: []uint64{w.reqs, w.reqs}}, nil
}

// TestCanarySteps: deploy --canary 10,25,50,100 bakes each step before
// the next and ends with all traffic on the release; a step that fails its
// bake sends all traffic back to the color the canary started from (exit
// 10), every step's measurements in history. Without a bake, steps are
// refused before anything changes.
func TestCanarySteps(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		failAt int
		steps  []int
		live   release.Color
	}{
		{"every step passes", 0, []int{10, 25, 50, 100}, release.Green},
		{"50% fails: back to blue", 50, []int{10, 25, 50, 25, 0}, release.Blue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			fx := deployFixture(t, w)
			fx.reconfigure(t, `{"application-name": "api", "store": "rel", "bake": "300ms", "analysis-interval": "100ms", "failure-limit": 2, "max-error-rate": "5%", "min-requests": 10}`)
			wt := newWeighted(tc.failAt)
			fx.d.DeployTarget = func(context.Context, int) (target.Target, error) { return wt, nil }
			_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc", Canary: 10, CanarySteps: []int{25, 50, 100}})
			if (tc.live == release.Blue) != errors.Is(err, target.ErrVerifyFailed) {
				t.Fatalf("deploy: %v", err)
			}
			if tc.live == release.Blue && !strings.Contains(err.Error(), "the canary stopped at 50%: all traffic is back on blue") {
				t.Errorf("error %v", err)
			}
			if !slices.Equal(wt.steps, tc.steps) {
				t.Errorf("weights of green %v, want %v", wt.steps, tc.steps)
			}
			ev := history(t, fx)[0]
			var weights []int
			for _, m := range ev.Analysis.Measurements {
				if !slices.Contains(weights, m.Weight) {
					weights = append(weights, m.Weight)
				}
			}
			want := []int{10, 25, 50, 100}
			if tc.live == release.Blue {
				want = []int{10, 25, 50}
			}
			if !slices.Equal(weights, want) {
				t.Errorf("measurements of steps %v, want %v", weights, want)
			}
		})
	}
	t.Run("steps need a bake", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		fx := deployFixture(t, w)
		wt := newWeighted(0)
		fx.d.DeployTarget = func(context.Context, int) (target.Target, error) { return wt, nil }
		_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc", Canary: 10, CanarySteps: []int{50, 100}})
		if ResultOf(err) != release.ResultRefused || !strings.Contains(err.Error(), "--canary 10,50,100 bakes each step") || len(wt.steps) != 0 {
			t.Fatalf("%v, steps %v", err, wt.steps)
		}
	})
}

// TestCanaryComparison: during a canary step both colors take traffic;
// with max-error-factor 2, a canary with 9% 5xx against the base's 3%
// fails (back to blue), one with 4% passes.
func TestCanaryComparison(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		green uint64
		fail  bool
	}{{9, true}, {4, false}} {
		w := newWorld(t)
		fx := deployFixture(t, w)
		fx.reconfigure(t, `{"application-name": "api", "store": "rel", "bake": "300ms", "analysis-interval": "100ms", "failure-limit": 2, "max-error-factor": 2, "min-requests": 10}`)
		wt := newWeighted(0)
		wt.blueErrs, wt.greenErrs = 3, tc.green
		fx.d.DeployTarget = func(context.Context, int) (target.Target, error) { return wt, nil }
		_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc", Canary: 10, CanarySteps: []int{50}})
		if tc.fail != errors.Is(err, target.ErrVerifyFailed) {
			t.Fatalf("green %d%%: %v", tc.green, err)
		}
		ev := history(t, fx)[0]
		last := ev.Analysis.Measurements[len(ev.Analysis.Measurements)-1]
		if last.Source != "compare" || (tc.fail && !strings.Contains(last.Why, "5xx 9.0% of 100 requests against 3.0% of 100 on the base color, over max-error-factor 2")) {
			t.Errorf("green %d%%: last measurement %+v", tc.green, last)
		}
		if want := []int{10, 50}; !tc.fail && !slices.Equal(wt.steps, want) {
			t.Errorf("steps %v, want %v", wt.steps, want)
		}
	}
}
