package workflow

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// scaler is a mock target whose colors are groups.
type scaler struct {
	*mock.Target
	scaled map[release.Color]int
}

func (s *scaler) PlanScale(_ context.Context, _ *target.State, c release.Color, n int) (*target.Plan, error) {
	return target.NewPlan(release.Blue, release.Blue, 100, []string{"scale"}, func(context.Context) error {
		s.scaled[c] = n
		return nil
	}), nil
}

func newScaler() *scaler {
	s := &scaler{scaled: map[release.Color]int{}}
	s.Target = &mock.Target{
		StateFunc: func(context.Context) (*target.State, error) {
			return &target.State{
				Live: target.ColorState{Color: release.Blue, Weight: 100, Group: &target.Group{Name: "b", Desired: 2}},
				Off:  target.ColorState{Color: release.Green, Group: &target.Group{Name: "g", Desired: 2}},
			}, nil
		},
		ApplyFunc: func(ctx context.Context, p *target.Plan) error { return p.Run(ctx) },
	}
	return s
}

func TestDownscale(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rc        string
		switched  time.Duration // ago; 0: no switch recorded
		force     bool
		dry       bool
		wantErr   string
		wantScale int // -1: not scaled
		// noise is how many refused downscales were recorded after the
		// switch (a cron job retrying every minute).
		noise int
	}{
		{name: "inside keep-warm", switched: 10 * time.Minute, wantErr: "stays warm for a rollback until", wantScale: -1},
		{name: "inside keep-warm forced", switched: 10 * time.Minute, force: true, wantScale: 0},
		{name: "after keep-warm", switched: 2 * time.Hour, wantScale: 0},
		{name: "keep-warm set", rc: `"keep-warm": "3h", `, switched: 2 * time.Hour, wantErr: "keep-warm 3h0m0s", wantScale: -1},
		{name: "min-off-capacity", rc: `"min-off-capacity": 1, `, switched: 2 * time.Hour, wantScale: 1},
		{name: "nothing recorded", wantScale: 0},
		{name: "dry run", switched: 2 * time.Hour, dry: true, wantScale: -1},
		{name: "inside keep-warm after many other events", switched: 50 * time.Minute, noise: 60, wantErr: "stays warm for a rollback until", wantScale: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, `{`+tc.rc+`"application-name": "api", "store": "rel"}`)
			fx.d.Index = func(context.Context) (*store.Index, error) { return store.NewIndex(fx.st, "api"), nil }
			ctx := context.Background()
			if tc.switched > 0 {
				ev := release.Event{Time: time.Now().Add(-tc.switched), Action: release.ActionRollback, App: "api",
					To: release.Side{Color: release.Blue}, Result: release.ResultOK}
				if err := store.AppendEvent(ctx, fx.st, &ev); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tc.noise {
				ev := release.Event{Time: time.Now().Add(-tc.switched).Add(time.Duration(i+1) * time.Second), Action: release.ActionDownscale, App: "api",
					To: release.Side{Color: release.Green}, Result: release.ResultFailed}
				if err := store.AppendEvent(ctx, fx.st, &ev); err != nil {
					t.Fatal(err)
				}
			}
			s := newScaler()
			out, err := fx.runner().Downscale(ctx, s, DownscaleRequest{Force: tc.force, DryRun: tc.dry, Reason: "r"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got, ok := s.scaled[release.Green]
			if tc.wantScale < 0 && ok || tc.wantScale >= 0 && (!ok || got != tc.wantScale) {
				t.Fatalf("scaled %v (%v), want %d", got, ok, tc.wantScale)
			}
			if s.scaled[release.Blue] != 0 {
				t.Fatal("the live color was scaled")
			}
			if err == nil && !tc.dry && out.Plan == nil {
				t.Fatal("no plan in the outcome")
			}
			evs, _ := store.ListEvents(ctx, fx.st, "api", store.EventQuery{})
			if !tc.dry && (len(evs) == 0 || evs[0].Action != release.ActionDownscale) {
				t.Fatalf("downscale not recorded first in history: %+v", evs)
			}
		})
	}
}

func TestDownscaleNotScaler(t *testing.T) {
	fx := newFixture(t, "")
	_, err := fx.runner().Downscale(context.Background(), &mock.Target{}, DownscaleRequest{})
	var ue UsageError
	if err == nil || !strings.Contains(err.Error(), "has no auto-scaling groups") || !errors.As(err, &ue) {
		t.Fatalf("err %v", err)
	}
}

// TestDownscaleWhileDeployHoldsTheLock: a deploy under way (it holds the
// lock) may be scaling the off color up; a downscale, even --force, must
// not scale it back down under it.
func TestDownscaleWhileDeployHoldsTheLock(t *testing.T) {
	fx := newFixture(t, `{"application-name": "api", "store": "rel"}`)
	ctx := context.Background()
	held, err := store.AcquireLock(ctx, fx.st, store.LockInfo{App: "api", Holder: "grace", Host: "ci", PID: 7, Command: "oops deploy v2"}, store.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	s := newScaler()
	_, err = fx.runner().Downscale(ctx, s, DownscaleRequest{Force: true})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "oops deploy v2") {
		t.Fatalf("err %v, want ErrLocked naming the deploy", err)
	}
	if len(s.scaled) != 0 {
		t.Fatalf("scaled %v while a deploy held the lock", s.scaled)
	}
}
