package workflow

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

func TestHookHealthURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     config.Config
		lb      string
		host    string
		want    string
		wantErr bool
	}{
		{name: "default", want: "http://127.0.0.1:8002/healthcheck"},
		{name: "from the ELB health check", lb: "HTTP:8001/status", want: "http://127.0.0.1:8002/status"},
		{name: "TCP health check", lb: "TCP:8001", want: "http://127.0.0.1:8002/healthcheck"},
		{name: "health-path", cfg: config.Config{HealthPath: "/up"}, lb: "HTTP:8001/status", want: "http://127.0.0.1:8002/up"},
		{name: "health-check-url path and query, never its host", cfg: config.Config{HealthCheckURL: "http://{ip}:{port}/health?deep=1"}, want: "http://127.0.0.1:8002/health?deep=1"},
		{name: "fixed host", cfg: config.Config{HealthCheckURL: "https://preview.example.com/ping"}, want: "http://127.0.0.1:8002/ping"},
		{name: "injected host", host: "::1", want: "http://[::1]:8002/healthcheck"},
		{name: "bad url", cfg: config.Config{HealthCheckURL: "not a url"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.cfg
			c.Path = "/app/.oopsrc"
			got, err := HookHealthURL(&c, tt.host, 8002, tt.lb)
			if tt.wantErr {
				var ce *config.Error
				if !errors.As(err, &ce) || ce.Path != c.Path || !strings.Contains(ce.Hint, "{port}") {
					t.Fatalf("err = %v, want a config error naming .oopsrc, with the form to write", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("HookHealthURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// lb is a two-color load balancer on one instance: blue on 8001, green on
// 8002, blue live at first.
type lb struct {
	mu        sync.Mutex
	live, off target.ColorState
	applied   int
	commits   map[release.Color]string // SetCommit calls
}

func newLB() *lb {
	return &lb{
		live:    target.ColorState{Color: release.Blue, Port: 8001, Commit: strings.Repeat("a", 40)},
		off:     target.ColorState{Color: release.Green, Port: 8002},
		commits: map[release.Color]string{},
	}
}

func (b *lb) target() *mock.Target {
	return &mock.Target{Name: "fake target",
		StateFunc: func(context.Context) (*target.State, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			return &target.State{Live: b.live, Off: b.off, HealthCheck: "HTTP:8001/up"}, nil
		},
		PlanFunc: func(_ context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
			return &target.Plan{From: st.Live.Color, To: to, Weight: weight, Steps: []string{"send all traffic to " + string(to)}}, nil
		},
		ProbeFunc: func(context.Context, release.Color) error { return nil },
		ApplyFunc: func(_ context.Context, p *target.Plan) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			if p.To != b.live.Color {
				b.live, b.off = b.off, b.live
			}
			b.applied++
			return nil
		},
		SetCommitFunc: func(_ context.Context, c release.Color, commit string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.commits[c] = commit
			if b.live.Color == c {
				b.live.Commit = commit
			} else {
				b.off.Commit = commit
			}
			return nil
		},
	}
}

// deployments is a CodeDeploy that knows one deployment.
type deployments map[string]Deployment

func (d deployments) Deployment(_ context.Context, id string) (Deployment, error) {
	dep, ok := d[id]
	if !ok {
		return Deployment{}, errors.New("DeploymentDoesNotExistException")
	}
	return dep, nil
}

// hookFixture is a Runner inside deployment d-1's hooks on lb.
func hookFixture(t *testing.T, b *lb, dep Deployment) *fixture {
	t.Helper()
	fx := newFixture(t, "")
	fx.env[EnvDeploymentID] = "d-1"
	fx.env[EnvLifecycleEvent] = "ApplicationStart"
	fx.env[EnvApplicationName] = "api"
	fx.d.Target = func(context.Context) (target.Target, error) { return b.target(), nil }
	fx.d.Deployments = func(context.Context) (DeploymentReader, error) { return deployments{"d-1": dep}, nil }
	return fx
}

func agree(string, *target.Plan) (bool, error) { return true, nil }

// The hook protocol across a deployment's hooks: the first hook picks the
// off color, the switch records the commit and marks the deployment
// switched, and every later hook, and a retried switch, keeps that color
// and changes nothing.
func TestHookMarkerProtocol(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newLB()
	commit := strings.Repeat("c", 40)

	// BeforeInstall: nothing recorded for d-1, so the off color is its.
	first := hookFixture(t, b, Deployment{Commit: commit})
	env, err := first.runner().HookEnv(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if env.Color != release.Green || env.Port != 8002 || env.Switched || env.Commit != commit ||
		env.LiveColor != release.Blue || env.LivePort != 8001 || env.HealthURL != "http://127.0.0.1:8002/up" {
		t.Fatalf("first hook's env = %+v, want green on 8002, not switched, the deployment's commit", env)
	}

	// ApplicationStart: hook switch moves traffic and records it.
	var asked []string
	out, err := first.runner().HookSwitch(ctx, env, HookSwitchRequest{Confirm: func(q string, p *target.Plan) (bool, error) {
		asked = append(asked, q)
		return true, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Switched || out.Color != release.Green || out.Deployment != "d-1" {
		t.Fatalf("switch outcome = %+v, want green switched for d-1", out)
	}
	if b.applied != 1 || b.live.Color != release.Green || b.commits[release.Green] != commit {
		t.Fatalf("lb: %d applies, %s live, commits %v; want one switch to green recording %s", b.applied, b.live.Color, b.commits, commit[:7])
	}
	if len(asked) != 1 || asked[0] != "Switch fake target from blue to green?" {
		t.Errorf("asked %q", asked)
	}
	evs, err := store.ListEvents(ctx, first.st, "api", store.EventQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("history: %v, %v; want the switch", evs, err)
	}
	if ev := evs[0]; ev.Action != release.ActionSwitch || ev.Result != release.ResultOK || ev.Deployment != "d-1" ||
		ev.From.Color != release.Blue || ev.To.Color != release.Green || ev.To.Commit != commit ||
		ev.Reason != "CodeDeploy deployment d-1 (ApplicationStart)" {
		t.Errorf("event = %+v", ev)
	}

	// ValidateService, and a retried ApplicationStart: green is now live,
	// yet it is still this deployment's color, and switched.
	later := hookFixture(t, b, Deployment{Commit: commit})
	later.st = first.st
	env, err = later.runner().HookEnv(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if env.Color != release.Green || env.Port != 8002 || !env.Switched {
		t.Fatalf("later hook's env = %+v, want green on 8002, switched", env)
	}
	out, err = later.runner().HookSwitch(ctx, env, HookSwitchRequest{Confirm: agree})
	if err != nil || !out.AlreadySwitched || out.Color != release.Green || out.Switched {
		t.Fatalf("retried switch = %+v, %v; want already switched to green", out, err)
	}
	if b.applied != 1 {
		t.Errorf("a retried switch switched again (%d applies)", b.applied)
	}
}

// Two instances' hooks read the deployment before either switched; the
// second to get the lock finds the marker switched and changes nothing.
func TestHookSwitchRereadsTheMarkerUnderTheLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newLB()
	one := hookFixture(t, b, Deployment{Commit: strings.Repeat("c", 40)})
	two := hookFixture(t, b, Deployment{Commit: strings.Repeat("c", 40)})
	two.st = one.st
	env1, err := one.runner().HookEnv(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	env2, err := two.runner().HookEnv(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.runner().HookSwitch(ctx, env1, HookSwitchRequest{Confirm: agree}); err != nil {
		t.Fatal(err)
	}
	out, err := two.runner().HookSwitch(ctx, env2, HookSwitchRequest{Confirm: agree})
	if err != nil || !out.AlreadySwitched || out.Color != release.Green {
		t.Fatalf("second switch = %+v, %v; want already switched to green", out, err)
	}
	if b.applied != 1 {
		t.Errorf("%d applies, want 1", b.applied)
	}
}

// A hook that died after writing the marker, before the switch, is
// finished by the next call: to the marker's color, recording the
// marker's commit.
func TestHookSwitchFinishesAHalfDoneSwitch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newLB()
	fx := hookFixture(t, b, Deployment{})
	m := &hookMarker{Deployment: "d-1", Color: release.Green, Commit: strings.Repeat("e", 40)}
	if _, err := fx.runner().writeHookMarker(ctx, m, ""); err != nil {
		t.Fatal(err)
	}
	env, err := fx.runner().HookEnv(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if env.Color != release.Green || env.Switched {
		t.Fatalf("env = %+v, want the marker's green, not switched", env)
	}
	out, err := fx.runner().HookSwitch(ctx, env, HookSwitchRequest{Confirm: agree})
	if err != nil || !out.Switched {
		t.Fatalf("switch = %+v, %v", out, err)
	}
	// The commit comes from the marker: CodeDeploy could not tell here.
	if b.commits[release.Green] != m.Commit || b.live.Color != release.Green {
		t.Errorf("lb: %s live, commits %v; want green with the marker's commit", b.live.Color, b.commits)
	}
	got, _, err := fx.runner().readHookMarker(ctx, "d-1")
	if err != nil || got == nil || !got.Switched {
		t.Errorf("marker after the switch = %+v, %v; want switched", got, err)
	}
}

func TestHookSwitchChangesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dep  Deployment
		req  HookSwitchRequest
		want HookSwitchOutcome
	}{
		{
			name: "a waiting oops deploy switches itself",
			dep:  Deployment{Commit: strings.Repeat("c", 40), Watched: true},
			req:  HookSwitchRequest{Confirm: agree},
			want: HookSwitchOutcome{Deployment: "d-1", Color: release.Green, Watched: true},
		},
		{
			name: "dry run",
			dep:  Deployment{Commit: strings.Repeat("c", 40)},
			req:  HookSwitchRequest{DryRun: true, Confirm: agree},
			want: HookSwitchOutcome{Deployment: "d-1", Color: release.Green, DryRun: true,
				Plan: &target.Plan{From: release.Blue, To: release.Green, Weight: 100, Steps: []string{"send all traffic to green"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := newLB()
			fx := hookFixture(t, b, tt.dep)
			env, err := fx.runner().HookEnv(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			out, err := fx.runner().HookSwitch(ctx, env, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, &tt.want) {
				t.Errorf("outcome = %+v, want %+v", out, &tt.want)
			}
			if b.applied != 0 || len(b.commits) != 0 {
				t.Errorf("lb changed: %d applies, commits %v", b.applied, b.commits)
			}
			if m, _, err := fx.runner().readHookMarker(ctx, "d-1"); m != nil || err != nil {
				t.Errorf("marker written: %+v, %v", m, err)
			}
			if evs, _ := store.ListEvents(ctx, fx.st, "api", store.EventQuery{}); len(evs) != 0 {
				t.Errorf("history: %+v, want nothing recorded", evs)
			}
		})
	}
}

// What CodeDeploy cannot say is a warning: the hook goes on without the
// commit (the instance role may lack codedeploy:GetDeployment).
func TestHookEnvReadsAroundCodeDeploy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		open func(context.Context) (DeploymentReader, error)
		warn string
	}{
		{"no client", func(context.Context) (DeploymentReader, error) { return nil, errors.New("no AWS region configured") },
			"oops: warning: cannot read deployment d-1: no AWS region configured\n"},
		{"no such deployment", func(context.Context) (DeploymentReader, error) { return deployments{}, nil },
			"oops: warning: cannot tell which commit deployment d-1 installs: DeploymentDoesNotExistException\n"},
	} {
		fx := hookFixture(t, newLB(), Deployment{})
		fx.d.Deployments = tt.open
		env, err := fx.runner().HookEnv(ctx, "")
		if err != nil || env.Commit != "" || env.Color != release.Green {
			t.Errorf("%s: env = %+v, %v; want green, no commit", tt.name, env, err)
		}
		if got := fx.errOut.String(); got != tt.warn {
			t.Errorf("%s: stderr = %q, want %q", tt.name, got, tt.warn)
		}
	}
}
