package workflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cdsdk "github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
)

var (
	shaA = strings.Repeat("a", 40) // live on blue
	shaB = strings.Repeat("b", 40) // on green, the off color
	shaC = strings.Repeat("c", 40) // published, running nowhere
)

// world is a blue/green target as a user sees it: which color takes the
// traffic, which commit each color runs, which install never passed its
// health check. It keeps what was done to it, and fails the test when a
// change is made with a context that does not carry the lock's fence.
type world struct {
	t      *testing.T
	mu     sync.Mutex
	live   release.Color
	commit map[release.Color]string
	// installing is the commit a color is marked as installing ("":
	// none), kept apart from its recorded commit, as ELB and ALB tags.
	installing map[release.Color]string
	changes    []string
	deployErr  error  // what Deploy returns
	deployID   string // the deployment Deploy reports
}

func newWorld(t *testing.T) *world {
	return &world{t: t, live: release.Blue,
		commit:     map[release.Color]string{release.Blue: shaA, release.Green: shaB},
		installing: map[release.Color]string{}}
}

// change records a change, made with ctx.
func (w *world) change(ctx context.Context, format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	what := fmt.Sprintf(format, args...)
	if target.FenceOf(ctx) == nil {
		w.t.Errorf("%s: made without the lock's fence", what)
	}
	w.changes = append(w.changes, what)
}

func (w *world) state() *target.State {
	w.mu.Lock()
	defer w.mu.Unlock()
	cs := func(c release.Color) target.ColorState {
		port := map[release.Color]int{release.Blue: 8001, release.Green: 8002}[c]
		cs := target.ColorState{Color: c, Port: port, Commit: w.commit[c]}
		if sha := w.installing[c]; sha != "" {
			cs.Commit, cs.Installing = sha, true
		}
		return cs
	}
	return &target.State{Kind: "mock", Name: "web", Live: cs(w.live), Off: cs(w.live.Other())}
}

// installTarget is the world as a target that records installs apart
// from its installer (as the ELB and ALB do).
type installTarget struct {
	*mock.Target
	w *world
}

func (it installTarget) SetInstalling(ctx context.Context, c release.Color, sha string) error {
	if sha == "" {
		it.w.change(ctx, "installing nothing on %s", c)
	} else {
		it.w.change(ctx, "installing %s on %s", release.Short(sha), c)
	}
	it.w.mu.Lock()
	it.w.installing[c] = sha
	it.w.mu.Unlock()
	return nil
}

func (w *world) target() target.Target {
	mt := &mock.Target{Name: "web",
		StateFunc: func(context.Context) (*target.State, error) { return w.state(), nil },
		PlanFunc: func(_ context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
			return target.NewPlan(st.Live.Color, to, weight, []string{"point the listener at " + string(to)}, func(ctx context.Context) error {
				w.change(ctx, "switch to %s", to)
				w.mu.Lock()
				w.live = to
				w.mu.Unlock()
				return nil
			}), nil
		},
		ApplyFunc: func(ctx context.Context, p *target.Plan) error { return p.Run(ctx) },
		ProbeFunc: func(context.Context, release.Color) error { return nil },
		SetCommitFunc: func(ctx context.Context, c release.Color, sha string) error {
			w.change(ctx, "commit %s on %s", release.Short(sha), c)
			w.mu.Lock()
			w.commit[c], w.installing[c] = sha, ""
			w.mu.Unlock()
			return nil
		},
	}
	return installTarget{Target: mt, w: w}
}

func (w *world) deployer() target.Deployer {
	return &mock.Deployer{DeployFunc: func(ctx context.Context, req target.DeployRequest) (*target.Deployment, error) {
		w.change(ctx, "install %s on %s", req.Release.Short(), req.Color)
		if w.deployErr != nil {
			return nil, w.deployErr
		}
		return &target.Deployment{ID: w.deployID}, nil
	}}
}

// liveCommit is what the users of the application get now.
func (w *world) liveCommit() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.commit[w.live]
}

// deployFixture is a Runner on a directory store where A, B and C are
// published, deploying to w.
func deployFixture(t *testing.T, w *world) *fixture {
	t.Helper()
	fx := newFixture(t, "")
	ctx := context.Background()
	idx := store.NewIndex(fx.st, "api")
	for _, sha := range []string{shaA, shaB, shaC} {
		body := []byte("release " + sha)
		if _, _, err := idx.Publish(ctx, store.PublishInput{Commit: sha, Ext: ".zip", Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	}
	fx.d.Resolve = func(_ context.Context, rev string) (string, error) {
		for _, sha := range []string{shaA, shaB, shaC} {
			if strings.HasPrefix(sha, rev) {
				return sha, nil
			}
		}
		return "", fmt.Errorf("unknown revision %s", rev)
	}
	fx.d.Index = func(ctx context.Context) (*store.Index, error) {
		s, err := fx.d.Store(ctx)
		if err != nil {
			return nil, err
		}
		return store.NewIndex(s, "api"), nil
	}
	fx.d.DeployTarget = func(context.Context, int) (target.Target, error) { return w.target(), nil }
	fx.d.Deployer = func(context.Context) (target.Deployer, error) { return w.deployer(), nil }
	fx.d.UsesCodeDeploy = func() bool { return false }
	return fx
}

// history is what oops history shows, newest first.
func history(t *testing.T, fx *fixture) []release.Event {
	t.Helper()
	evs, err := store.ListEvents(context.Background(), fx.st, "api", store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func markBad(t *testing.T, fx *fixture, sha string) {
	t.Helper()
	err := store.UpdateMarks(context.Background(), fx.st, "api", func(m store.Marks) {
		m.ApplyEvent(&release.Event{Action: release.ActionRollback, Result: release.ResultOK, From: release.Side{Commit: sha}, To: release.Side{Color: release.Blue}, Reason: "500s"})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeploy(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("the app exited 1")
	tests := []struct {
		name    string
		req     DeployRequest
		setup   func(*testing.T, *fixture, *world)
		wantErr error // nil: succeeds
		live    string
		changes []string
		event   release.Event // Action, Result, To.Commit, NoSwitch; none when Action is ""
	}{
		{name: "warm: the off color runs it, traffic only is switched",
			req:     DeployRequest{Rev: "bbbbbbb"},
			live:    shaB,
			changes: []string{"switch to green"},
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Color: release.Green, Commit: shaB}}},
		{name: "cold: marked installing, installed, recorded, switched",
			req:     DeployRequest{Rev: "ccccccc"},
			live:    shaC,
			changes: []string{"installing ccccccc on green", "install ccccccc on green", "commit ccccccc on green", "switch to green"},
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Color: release.Green, Commit: shaC}}},
		{name: "an install that never passed is installed again",
			req:     DeployRequest{Rev: "bbbbbbb"},
			setup:   func(_ *testing.T, _ *fixture, w *world) { w.installing[release.Green] = shaB },
			live:    shaB,
			changes: []string{"installing bbbbbbb on green", "install bbbbbbb on green", "commit bbbbbbb on green", "switch to green"},
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Color: release.Green, Commit: shaB}}},
		{name: "a release marked BAD is refused, and the refusal recorded",
			req:     DeployRequest{Rev: "ccccccc"},
			setup:   func(t *testing.T, fx *fixture, _ *world) { markBad(t, fx, shaC) },
			wantErr: &store.BadReleaseError{},
			live:    shaA,
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultRefused, To: release.Side{Color: release.Green, Commit: shaC}}},
		{name: "--force deploys a release marked BAD",
			req:     DeployRequest{Rev: "ccccccc", Force: true},
			setup:   func(t *testing.T, fx *fixture, _ *world) { markBad(t, fx, shaC) },
			live:    shaC,
			changes: []string{"installing ccccccc on green", "install ccccccc on green", "commit ccccccc on green", "switch to green"},
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Color: release.Green, Commit: shaC}}},
		{name: "--no-switch installs and records, traffic stays",
			req:     DeployRequest{Rev: "ccccccc", NoSwitch: true},
			live:    shaA,
			changes: []string{"installing ccccccc on green", "install ccccccc on green", "commit ccccccc on green"},
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Color: release.Green, Commit: shaC}, NoSwitch: true}},
		{name: "the install fails: traffic untouched, the deploy failed",
			req:     DeployRequest{Rev: "ccccccc"},
			setup:   func(_ *testing.T, _ *fixture, w *world) { w.deployErr = errBoom },
			wantErr: target.ErrDeployFailed,
			live:    shaA,
			changes: []string{"installing ccccccc on green", "install ccccccc on green"},
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultFailed, To: release.Side{Color: release.Green, Commit: shaC}}},
		{name: "the artifact is not what was published: nothing switched",
			req: DeployRequest{Rev: "ccccccc"},
			setup: func(_ *testing.T, _ *fixture, w *world) {
				w.deployErr = fmt.Errorf("deploy ccccccc: %w", target.ErrIntegrity)
			},
			wantErr: target.ErrIntegrity,
			live:    shaA,
			changes: []string{"installing ccccccc on green", "install ccccccc on green"},
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultRefused, To: release.Side{Color: release.Green, Commit: shaC}}},
		{name: "the operator says no",
			req:     DeployRequest{Rev: "ccccccc", Confirm: func(string) (bool, error) { return false, nil }},
			wantErr: target.ErrAborted,
			live:    shaA,
			event:   release.Event{Action: release.ActionDeploy, Result: release.ResultRefused, To: release.Side{Color: release.Green, Commit: shaC}}},
		{name: "already live: nothing to do, nothing recorded",
			req:  DeployRequest{Rev: "aaaaaaa"},
			live: shaA},
		{name: "the dry run changes nothing",
			req:  DeployRequest{Rev: "ccccccc", DryRun: true},
			live: shaA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			fx := deployFixture(t, w)
			if tt.setup != nil {
				tt.setup(t, fx, w)
			}
			out, err := fx.runner().Deploy(context.Background(), tt.req)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Deploy: %v\n%s", err, fx.errOut)
			}
			var bad *store.BadReleaseError
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) && !(errors.As(tt.wantErr, &bad) && errors.As(err, &bad)) {
				t.Fatalf("Deploy: %v, want %v", err, tt.wantErr)
			}
			if err == nil && out == nil {
				t.Fatal("Deploy succeeded without an outcome")
			}
			if got := w.liveCommit(); got != tt.live {
				t.Errorf("live: %s, want %s", release.Short(got), release.Short(tt.live))
			}
			if got, want := strings.Join(w.changes, "; "), strings.Join(tt.changes, "; "); got != want {
				t.Errorf("changes to the target:\n got %s\nwant %s", got, want)
			}
			evs := history(t, fx)
			if tt.event.Action == "" {
				if len(evs) != 0 {
					t.Errorf("history has %d events, want none", len(evs))
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("history has %d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Action != tt.event.Action || ev.Result != tt.event.Result || ev.To != tt.event.To || ev.NoSwitch != tt.event.NoSwitch ||
				ev.From != (release.Side{Color: release.Blue, Commit: shaA}) || ev.Target != "web" {
				t.Errorf("history: %s %s from %+v to %+v no-switch %v on %q, want %s %s to %+v no-switch %v",
					ev.Action, ev.Result, ev.From, ev.To, ev.NoSwitch, ev.Target, tt.event.Action, tt.event.Result, tt.event.To, tt.event.NoSwitch)
			}
		})
	}
}

// TestDeployInstallingUntilItPassed: while the release is being installed
// the off color is marked installing (no known-good rollback target), and
// the mark goes once its commit is recorded.
func TestDeployInstallingUntilItPassed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fx := deployFixture(t, w)
	var during bool
	fx.d.Deployer = func(context.Context) (target.Deployer, error) {
		return &mock.Deployer{DeployFunc: func(ctx context.Context, req target.DeployRequest) (*target.Deployment, error) {
			during = w.state().Off.Installing && w.state().Off.Commit == shaC
			return &target.Deployment{}, nil
		}}, nil
	}
	if _, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc", NoSwitch: true}); err != nil {
		t.Fatal(err)
	}
	if !during {
		t.Error("green was not marked installing while ccccccc was installed")
	}
	if st := w.state(); st.Off.Installing || st.Off.Commit != shaC {
		t.Errorf("after the install green runs %s, installing %v; want ccccccc, passed", release.Short(st.Off.Commit), st.Off.Installing)
	}
}

// TestDeployNotStartedKeepsTheOffRecord: an install AWS refused before it
// changed anything (a denied CreateLaunchTemplateVersion) leaves the off
// color running what it ran: its record comes back, so status, list and
// a rollback do not name a release that never reached it. An earlier
// install that never finished stays marked.
func TestDeployNotStartedKeepsTheOffRecord(t *testing.T) {
	t.Parallel()
	denied := target.NotStarted(errors.New("CreateLaunchTemplateVersion: AccessDenied"))
	tests := []struct {
		name           string
		installing     string // green's mark before the deploy
		err            error
		wantCommit     string
		wantInstalling bool
		wantSaid       string
	}{
		{name: "refused before it began", err: denied, wantCommit: shaB, wantSaid: "nothing changed on green: it still runs bbbbbbb"},
		{name: "refused, after an install that never finished", installing: shaA, err: denied, wantCommit: shaA, wantInstalling: true,
			wantSaid: "nothing changed on green: it still runs what it ran before"},
		{name: "failed after it began", err: errors.New("instances never healthy"), wantCommit: shaC, wantInstalling: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.installing[release.Green] = tt.installing
			w.deployErr = tt.err
			fx := deployFixture(t, w)
			_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc"})
			if !errors.Is(err, target.ErrDeployFailed) {
				t.Fatalf("Deploy: %v, want a failed deployment", err)
			}
			if errors.Is(tt.err, target.ErrNotStarted) && !errors.Is(err, target.ErrNotStarted) {
				t.Errorf("Deploy: %v lost ErrNotStarted", err)
			}
			if st := w.state(); st.Off.Commit != tt.wantCommit || st.Off.Installing != tt.wantInstalling || w.liveCommit() != shaA {
				t.Errorf("after the deploy green is %s (installing %v), live %s; want %s (installing %v), live aaaaaaa",
					release.Short(st.Off.Commit), st.Off.Installing, release.Short(w.liveCommit()), release.Short(tt.wantCommit), tt.wantInstalling)
			}
			if tt.wantSaid != "" && !strings.Contains(fx.errOut.String(), tt.wantSaid) {
				t.Errorf("stderr does not say %q:\n%s", tt.wantSaid, fx.errOut)
			}
		})
	}
}

func TestDeployNoWaitReturnsTheDeployment(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.deployID = "d-42"
	fx := deployFixture(t, w)
	fx.d.UsesCodeDeploy = func() bool { return true }
	out, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if out.DeploymentID != "d-42" || out.Switch != nil {
		t.Errorf("outcome: deployment %q, switch %v; want d-42 and no switch", out.DeploymentID, out.Switch)
	}
	if w.liveCommit() != shaA {
		t.Error("--no-wait switched traffic")
	}
	if !strings.Contains(fx.errOut.String(), "not waiting for deployment d-42 (--no-wait): nothing recorded or switched") {
		t.Errorf("stderr: %s", fx.errOut)
	}
	// Without CodeDeploy there is nothing to wait for apart: bad input.
	fx = deployFixture(t, newWorld(t))
	_, err = fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc", NoWait: true})
	var ue UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--no-wait only applies to deployments through CodeDeploy") {
		t.Errorf("--no-wait without CodeDeploy: %v, want a usage error", err)
	}
}

func TestDeployDryRunPlan(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fx := deployFixture(t, w)
	out, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc", DryRun: true, Canary: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"record " + shaC + " as installing (unverified) on green",
		"install api/api-" + shaC + ".zip on green (port 8002) and wait until it is healthy",
		"record commit " + shaC + " on green",
		"check the health of green",
		"point the listener at green",
	}
	if got := strings.Join(out.Plan, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if len(w.changes) != 0 || len(history(t, fx)) != 0 {
		t.Errorf("a dry run changed %v and recorded %d events", w.changes, len(history(t, fx)))
	}
}

// TestRollbackTo: rolling back to an earlier release deploys it, records
// a rollback, and marks the release it leaves BAD.
func TestRollbackTo(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fx := deployFixture(t, w)
	ctx := context.Background()
	if _, err := fx.runner().RollbackTo(ctx, DeployRequest{Rev: "ccccccc", Reason: "checkout broken"}); err != nil {
		t.Fatalf("%v\n%s", err, fx.errOut)
	}
	if w.liveCommit() != shaC {
		t.Errorf("live: %s, want ccccccc", release.Short(w.liveCommit()))
	}
	evs := history(t, fx)
	if len(evs) != 1 || evs[0].Action != release.ActionRollback || evs[0].Result != release.ResultOK || evs[0].To.Commit != shaC {
		t.Fatalf("history: %+v, want one rollback to ccccccc", evs)
	}
	marks, err := store.LoadMarks(ctx, fx.st, "api")
	if err != nil {
		t.Fatal(err)
	}
	if mk := marks[shaA]; !mk.Bad || mk.BadReason != "checkout broken" {
		t.Errorf("aaaaaaa (left) marked %+v, want BAD: checkout broken", mk)
	}
	// A release marked BAD needs --force, and the hint says the command.
	markBad(t, fx, shaB)
	_, err = New(fx.d).RollbackTo(ctx, DeployRequest{Rev: "bbbbbbb"})
	if hint := hintOf(err); !strings.Contains(hint, "oops rollback --to bbbbbbb --force") {
		t.Errorf("rollback --to a BAD release: %v (hint %q), want refused with the command to force it", err, hint)
	}
}

func TestDeployRefusesDuringACanary(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fx := deployFixture(t, w)
	tg := w.target().(installTarget)
	tg.StateFunc = func(context.Context) (*target.State, error) {
		st := w.state()
		st.Base, st.Off.Weight = release.Blue, 10
		return st, nil
	}
	fx.d.DeployTarget = func(context.Context, int) (target.Target, error) { return tg, nil }
	_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc"})
	if err == nil || !strings.Contains(err.Error(), "a canary is in progress on web (green has 10% of the traffic)") {
		t.Errorf("Deploy during a canary: %v", err)
	}
	if len(w.changes) != 0 {
		t.Errorf("changed %v", w.changes)
	}
}

func TestDeployNotPublishedListsTheNearest(t *testing.T) {
	t.Parallel()
	fx := deployFixture(t, newWorld(t))
	resolve := fx.d.Resolve
	fx.d.Resolve = func(ctx context.Context, rev string) (string, error) {
		if rev == "ddddddd" {
			return strings.Repeat("d", 40), nil
		}
		return resolve(ctx, rev)
	}
	_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ddddddd"})
	if !errors.Is(err, release.ErrNotPublished) {
		t.Fatalf("Deploy: %v, want not published", err)
	}
	hint := hintOf(err)
	for _, want := range []string{"the newest published releases:", "\n  aaaaaaa  ", "deploy one of them, or publish this commit first: oops publish FILE --commit ddddddd"} {
		if !strings.Contains(hint, want) {
			t.Errorf("hint %q lacks %q", hint, want)
		}
	}
}

// stopAPI is a CodeDeploy that only knows StopDeployment.
type stopAPI struct {
	codedeploy.API
	stopped []string
}

func (s *stopAPI) StopDeployment(_ context.Context, in *cdsdk.StopDeploymentInput, _ ...func(*cdsdk.Options)) (*cdsdk.StopDeploymentOutput, error) {
	s.stopped = append(s.stopped, aws.ToString(in.DeploymentId))
	return &cdsdk.StopDeploymentOutput{Status: cdtypes.StopStatusPending, StatusMessage: aws.String("stopping")}, nil
}

func TestInterruptedDeployAsksToStop(t *testing.T) {
	t.Parallel()
	answer := func(yes bool) func(string) (bool, error) {
		return func(string) (bool, error) { return yes, nil }
	}
	tests := []struct {
		name      string
		ask       func(string) (bool, error)
		wantStop  bool
		wantInErr string
	}{
		{name: "yes", ask: answer(true), wantStop: true, wantInErr: "stopping deployment d-1: Pending: stopping"},
		{name: "no", ask: answer(false), wantInErr: "deployment d-1 keeps running on the off color (no traffic); stop it later with: aws deploy stop-deployment --deployment-id d-1"},
		{name: "no terminal", wantInErr: "interrupted: deployment d-1 keeps running on the off color (no traffic); stop it with: aws deploy stop-deployment --deployment-id d-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			api := &stopAPI{}
			// The command's context is already cancelled by Ctrl-C.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			fx.runner().stopDeployment(ctx, &codedeploy.Deployer{API: api}, "d-1", tt.ask)
			if got := len(api.stopped) == 1; got != tt.wantStop {
				t.Errorf("stopped %v, want stop=%v", api.stopped, tt.wantStop)
			}
			if !strings.Contains(fx.errOut.String(), tt.wantInErr) {
				t.Errorf("stderr = %q, want it to contain %q", fx.errOut.String(), tt.wantInErr)
			}
		})
	}
}

// repairingTarget is the world as a target that can also plan a repair:
// a switch that resumes interrupted switches would call it.
type repairingTarget struct {
	installTarget
	planned *bool
}

func (r repairingTarget) PlanRepair(context.Context, release.Color) (*target.Plan, error) {
	*r.planned = true
	return nil, errors.New("repair planned")
}

// TestDeploySwitchDoesNotResume: deploy's switch is its own. A target
// found half-switched after the install is an error to report (exit 8,
// oops repair or rollback decides), not an interrupted switch for deploy
// to finish behind the operator's back; and the release it just
// installed is not checked for BAD a second time. (As before 52d0f71's
// move: the deploy switch had no Resume and no Check.)
func TestDeploySwitchDoesNotResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fx := deployFixture(t, w)
	tg := w.target().(installTarget)
	state := tg.StateFunc
	tg.StateFunc = func(ctx context.Context) (*target.State, error) {
		st, _ := state(ctx)
		w.mu.Lock()
		installed := w.commit[release.Green] == shaC && w.installing[release.Green] == ""
		w.mu.Unlock()
		if installed {
			st.Pending = &target.Intent{From: release.Blue, To: release.Green}
			return st, fmt.Errorf("listeners half-switched: %w", target.ErrInconsistent)
		}
		return st, nil
	}
	planned := false
	fx.d.DeployTarget = func(context.Context, int) (target.Target, error) {
		return repairingTarget{installTarget: tg, planned: &planned}, nil
	}
	_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc"})
	if !errors.Is(err, target.ErrInconsistent) || !strings.Contains(err.Error(), "traffic was not switched") {
		t.Errorf("Deploy onto a target found half-switched: %v, want the inconsistency reported", err)
	}
	if planned {
		t.Error("deploy resumed an interrupted switch (planned a repair)")
	}
}

// hungTarget is installTarget whose clearing of an installing mark hangs
// until its context ends (AWS not answering, the reason for a Ctrl-C).
type hungTarget struct{ installTarget }

func (h hungTarget) SetInstalling(ctx context.Context, c release.Color, sha string) error {
	if sha == "" {
		<-ctx.Done()
		return ctx.Err()
	}
	return h.installTarget.SetInstalling(ctx, c, sha)
}

// TestDeployNotStartedAfterCtrlCEnds: Ctrl-C during a deploy's first reads
// (ErrNotStarted wrapping context.Canceled) must not leave deploy hanging
// on giving the color its record back: Ctrl-C has been used up (a second
// one is caught by the same handler), so only a bound ends that call.
func TestDeployNotStartedAfterCtrlCEnds(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fx := deployFixture(t, w)
	fx.d.DeployTarget = func(context.Context, int) (target.Target, error) {
		return hungTarget{w.target().(installTarget)}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fx.d.Deployer = func(context.Context) (target.Deployer, error) {
		return &mock.Deployer{DeployFunc: func(context.Context, target.DeployRequest) (*target.Deployment, error) {
			cancel() // Ctrl-C while the deployer reads the group
			return nil, target.NotStarted(fmt.Errorf("read groups: %w", context.Canceled))
		}}, nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Deploy: %v, want it interrupted", err)
		}
		if !strings.Contains(fx.errOut.String(), "its record still says it installs") {
			t.Errorf("stderr does not say the mark stayed:\n%s", fx.errOut)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Deploy still hangs 20s after Ctrl-C, on clearing the installing mark")
	}
}
