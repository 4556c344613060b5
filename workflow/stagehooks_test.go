package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// hookCall is a hook as the fake runner saw it.
type hookCall struct {
	stage string
	args  []string
	env   map[string]string
	event release.Event // from stdin
	// lockToken is the token of the lock in the store when it ran.
	lockToken string
}

// fakeHooks is a HookRunner that runs nothing: it notes each call and
// answers with exits[stage] (0 when unset), printing say[stage].
type fakeHooks struct {
	t     *testing.T
	st    store.Store
	mu    sync.Mutex
	calls []hookCall
	exits map[string]int
	say   map[string]string
}

func (f *fakeHooks) RunHook(ctx context.Context, call HookCall) (int, error) {
	c := hookCall{stage: call.Stage, args: call.Args, env: map[string]string{}}
	for _, kv := range call.Env {
		k, v, _ := strings.Cut(kv, "=")
		c.env[k] = v
	}
	if err := json.Unmarshal(call.Stdin, &c.event); err != nil {
		f.t.Errorf("hook %s: stdin %q is not an event: %v", call.Stage, call.Stdin, err)
	}
	if info, _, err := store.ReadLock(ctx, f.st, "api"); err == nil && !info.Released {
		c.lockToken = info.Token
	}
	if call.Dir == "" || call.Timeout != defaultHookTimeout {
		f.t.Errorf("hook %s: dir %q, timeout %s; want the .oopsrc folder and the default", call.Stage, call.Dir, call.Timeout)
	}
	if s := f.say[call.Stage]; s != "" {
		call.Output(s)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	return f.exits[call.Stage], nil
}

func (f *fakeHooks) stages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, c := range f.calls {
		s = append(s, c.stage)
	}
	return s
}

func (f *fakeHooks) call(t *testing.T, stage string) hookCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.stage == stage {
			return c
		}
	}
	t.Fatalf("no %s hook ran (ran: %v)", stage, f.calls)
	return hookCall{}
}

// everyHook is an .oopsrc with a hook at every stage.
func everyHook() string {
	var hooks []string
	for _, s := range []string{StagePreDeploy, StagePostInstall, StagePreSwitch, StagePostSwitch, StageOnRevert, StageOnFailure, StagePostRollback} {
		hooks = append(hooks, fmt.Sprintf("%q: [%q, %q]", s, "./hooks/"+s+".sh", "$OOPS_TO_COLOR"))
	}
	return `{"application-name": "api", "store": "rel", "hooks": {` + strings.Join(hooks, ", ") + `}}`
}

func withFakeHooks(t *testing.T, fx *fixture, exits map[string]int) *fakeHooks {
	t.Helper()
	fx.reconfigure(t, everyHook())
	f := &fakeHooks{t: t, st: fx.st, exits: exits, say: map[string]string{}}
	fx.d.Hooks = f
	return f
}

// TestHookStagesFireInOrder: each change runs the hooks of its stages in
// order, each under the command's lock (its token), with the event in its
// environment and on stdin.
func TestHookStagesFireInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		run    func(t *testing.T, fx *fixture) error
		stages []string
	}{
		{"deploy", func(t *testing.T, fx *fixture) error {
			_, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc", Reason: "ship"})
			return err
		}, []string{StagePreDeploy, StagePostInstall, StagePreSwitch, StagePostSwitch}},
		{"deploy of what the off color runs: nothing installed", func(t *testing.T, fx *fixture) error {
			_, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "bbbbbbb", Reason: "ship"})
			return err
		}, []string{StagePreDeploy, StagePreSwitch, StagePostSwitch}},
		{"deploy --no-switch", func(t *testing.T, fx *fixture) error {
			_, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc", Reason: "ship", NoSwitch: true})
			return err
		}, []string{StagePreDeploy, StagePostInstall}},
		{"rollback --to", func(t *testing.T, fx *fixture) error {
			_, err := fx.runner().RollbackTo(ctx, DeployRequest{Rev: "ccccccc", Reason: "ship"})
			return err
		}, []string{StagePostRollback}},
		{"a refused deploy", func(t *testing.T, fx *fixture) error {
			markBad(t, fx, shaC)
			_, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc", Reason: "ship"})
			if !errors.Is(err, store.ErrBadRelease) {
				t.Errorf("deploy of a BAD release: %v", err)
			}
			return nil
		}, []string{StageOnFailure}},
		{"a failed install", func(t *testing.T, fx *fixture) error {
			fx.d.Deployer = func(context.Context) (target.Deployer, error) {
				return failingDeployer{}, nil
			}
			_, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc", Reason: "ship"})
			if !errors.Is(err, target.ErrDeployFailed) {
				t.Errorf("deploy: %v", err)
			}
			return nil
		}, []string{StagePreDeploy, StageOnFailure}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			fx := deployFixture(t, w)
			f := withFakeHooks(t, fx, nil)
			if err := tt.run(t, fx); err != nil {
				t.Fatalf("%v\n%s", err, fx.errOut)
			}
			if got := f.stages(); !slices.Equal(got, tt.stages) {
				t.Fatalf("hooks ran %v, want %v", got, tt.stages)
			}
			evs := history(t, fx)
			if len(evs) != 1 {
				t.Fatalf("%d events", len(evs))
			}
			var recorded []string
			for _, h := range evs[0].HookRuns() {
				recorded = append(recorded, h.Stage)
			}
			if !slices.Equal(recorded, tt.stages) {
				t.Errorf("history records hooks %v, want %v", recorded, tt.stages)
			}
			for _, c := range f.calls {
				if c.env[LockTokenEnv] == "" || c.env[LockTokenEnv] != c.lockToken {
					t.Errorf("hook %s: %s=%q, want the lock's token %q", c.stage, LockTokenEnv, c.env[LockTokenEnv], c.lockToken)
				}
				want := map[string]string{
					"OOPS_ACTION": evs[0].Action, "OOPS_FROM_COLOR": "blue", "OOPS_FROM_COMMIT": shaA,
					"OOPS_TO_COLOR": "green", "OOPS_TO_COMMIT": evs[0].To.Commit, "OOPS_WHO": "ada", "OOPS_REASON": "ship",
				}
				for k, v := range want {
					if c.env[k] != v {
						t.Errorf("hook %s: %s=%q, want %q", c.stage, k, c.env[k], v)
					}
				}
				if c.event.Action != evs[0].Action || c.event.To != evs[0].To || c.event.Reason != "ship" {
					t.Errorf("hook %s: stdin %+v, want the event", c.stage, c.event)
				}
				if !slices.Equal(c.args, []string{"./hooks/" + c.stage + ".sh", "green"}) {
					t.Errorf("hook %s: args %q, want $OOPS_TO_COLOR expanded", c.stage, c.args)
				}
			}
			results := map[string]string{StagePostSwitch: "ok", StagePostRollback: "ok", StageOnFailure: evs[0].Result, StagePreSwitch: ""}
			for stage, want := range results {
				for _, c := range f.calls {
					if c.stage == stage && c.env["OOPS_RESULT"] != want {
						t.Errorf("hook %s: OOPS_RESULT=%q, want %q", stage, c.env["OOPS_RESULT"], want)
					}
				}
			}
		})
	}
}

type failingDeployer struct{}

func (failingDeployer) Deploy(context.Context, target.DeployRequest) (*target.Deployment, error) {
	return nil, errors.New("the app exited 1")
}

// TestHookStagesOfASwitch: a rollback runs post-rollback only (nothing
// before its switch);
// a switch that fails verification and goes back runs pre-switch,
// on-revert and on-failure; OOPS_URL is where the new color answers.
func TestHookStagesOfASwitch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("rollback", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, "")
		f := withFakeHooks(t, fx, nil)
		b := newBoard(fx)
		b.st.Kind, b.st.Off.Port = "local", 8082
		if _, err := fx.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Reason: "500s", Confirm: yes}); err != nil {
			t.Fatal(err)
		}
		if got := f.stages(); !slices.Equal(got, []string{StagePostRollback}) {
			t.Fatalf("hooks %v", got)
		}
		post := f.call(t, StagePostRollback)
		if post.env["OOPS_URL"] != "http://127.0.0.1:8082" || post.env["OOPS_FROM_COMMIT"] != v2 || post.env["OOPS_TO_COMMIT"] != v1 || post.env["OOPS_ACTION"] != "rollback" || post.env["OOPS_RESULT"] != "ok" {
			t.Errorf("post-rollback env %v", post.env)
		}
		if !slices.Contains(b.calls, "apply green 100") {
			t.Errorf("not switched: %v", b.calls)
		}
	})
	t.Run("automatic revert", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, "")
		f := withFakeHooks(t, fx, nil)
		b := newBoard(fx)
		b.VerifyFunc = func(context.Context, release.Color, time.Duration) error { return errors.New("503") }
		_, err := fx.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Reason: "go", Verify: time.Second, Confirm: yes})
		if !errors.Is(err, target.ErrVerifyFailed) {
			t.Fatal(err)
		}
		if got := f.stages(); !slices.Equal(got, []string{StagePreSwitch, StageOnRevert, StageOnFailure}) {
			t.Fatalf("hooks %v", got)
		}
		if c := f.call(t, StageOnFailure); c.env["OOPS_RESULT"] != "failed" || c.event.Error == "" {
			t.Errorf("on-failure env %v, event %+v", c.env, c.event)
		}
	})
	t.Run("refused: another holder has the lock", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, "")
		f := withFakeHooks(t, fx, nil)
		bob, err := store.AcquireLock(ctx, fx.st, store.LockInfo{App: "api", Holder: "bob", Command: "oops deploy"}, store.LockOptions{TTL: time.Hour, Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = bob.Release(context.Background()) }()
		b := newBoard(fx)
		if _, err := fx.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes}); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("switch under bob's lock: %v", err)
		}
		if got := f.stages(); !slices.Equal(got, []string{StageOnFailure}) {
			t.Fatalf("hooks %v, want on-failure", got)
		}
		// Not ours to lend: the hook gets no token.
		if c := f.call(t, StageOnFailure); c.env["OOPS_RESULT"] != "refused" || c.env[LockTokenEnv] != "" {
			t.Errorf("on-failure env %v", c.env)
		}
	})
	t.Run("oops off runs none", func(t *testing.T) {
		t.Parallel()
		fx := newFixture(t, "")
		f := withFakeHooks(t, fx, nil)
		b := newBoard(fx)
		if _, err := fx.runner().Switch(ctx, b, SwitchRequest{To: release.Green, Action: release.ActionPreview, Command: "oops off", Confirm: yes}); err != nil {
			t.Fatal(err)
		}
		if got := f.stages(); len(got) != 0 {
			t.Errorf("oops off (the preview load balancer) ran hooks %v", got)
		}
	})
}

// TestPreSwitchHookRefuses: a pre-switch hook that exits non-zero refuses
// the switch like a failed health gate (target.ErrUnhealthy: exit 6),
// recorded as refused with the hook's output; --force goes ahead with a
// warning, and a rollback runs no hook before its switch.
func TestPreSwitchHookRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		req     SwitchRequest
		refused bool
	}{
		{"promote", SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Reason: "go", Confirm: yes}, true},
		{"promote --force", SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Reason: "go", Force: true, Confirm: yes}, false},
		{"rollback", SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Reason: "go", Confirm: yes}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			f := withFakeHooks(t, fx, map[string]int{StagePreSwitch: 3})
			f.say[StagePreSwitch] = "smoke test: /login answered 500"
			b := newBoard(fx)
			_, err := fx.runner().Switch(ctx, b, tt.req)
			switched := slices.Contains(b.calls, "apply green 100")
			ev := history(t, fx)[0]
			if !tt.refused {
				if err != nil || !switched || ev.Result != release.ResultOK {
					t.Fatalf("%v, switched %v, %s; want switched anyway", err, switched, ev.Result)
				}
				ran := slices.Contains(f.stages(), StagePreSwitch)
				if rollback := tt.req.Action == release.ActionRollback; ran == rollback {
					t.Errorf("pre-switch ran: %v, for a rollback: %v", ran, rollback)
				}
				if warned := strings.Contains(fx.errOut.String(), "hook pre-switch (./hooks/pre-switch.sh): exit status 3: going on (--force)"); warned != ran {
					t.Errorf("stderr:\n%s\nwant a warning about the hook when it ran", fx.errOut)
				}
				return
			}
			if !errors.Is(err, target.ErrUnhealthy) || ResultOf(err) != release.ResultRefused || switched {
				t.Fatalf("%v (switched %v); want refused, unhealthy-like", err, switched)
			}
			if want := "refused by hook pre-switch (./hooks/pre-switch.sh): exit status 3"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if !strings.Contains(hintOf(err), "--force") {
				t.Errorf("hint %q", hintOf(err))
			}
			if ev.Result != release.ResultRefused || !strings.Contains(ev.Error, "hook pre-switch") {
				t.Errorf("history: %+v", ev)
			}
			runs := ev.HookRuns()
			if len(runs) != 2 || runs[0] != (release.HookRun{Stage: StagePreSwitch, Exit: 3, Error: "exit status 3", Tail: "smoke test: /login answered 500"}) || runs[1].Stage != StageOnFailure {
				t.Errorf("history records hooks %+v", runs)
			}
			if !strings.Contains(fx.errOut.String(), "hook pre-switch: smoke test: /login answered 500") {
				t.Errorf("stderr:\n%s\nwant the hook's output, prefixed", fx.errOut)
			}
		})
	}
}

// TestPreSwitchHookRefusesADeploy: the release stays installed on the off
// color, traffic where it was.
func TestPreSwitchHookRefusesADeploy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	fx := deployFixture(t, w)
	withFakeHooks(t, fx, map[string]int{StagePreSwitch: 1})
	_, err := fx.runner().Deploy(context.Background(), DeployRequest{Rev: "ccccccc"})
	if !errors.Is(err, target.ErrUnhealthy) || !strings.Contains(err.Error(), "ccccccc is installed on green, but traffic was not switched: refused by hook pre-switch") {
		t.Fatalf("deploy: %v", err)
	}
	if w.liveCommit() != shaA {
		t.Errorf("live is %s, want aaaaaaa still", release.Short(w.liveCommit()))
	}
	if ev := history(t, fx)[0]; ev.Result != release.ResultRefused {
		t.Errorf("history %+v, want refused", ev)
	}
}

// TestExecHooks: hooks as processes: run in the .oopsrc folder with the
// event in their environment and on stdin, output prefixed on stderr and
// its tail recorded; a hook past hook-timeout is killed with what it
// started.
func TestExecHooks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell hooks")
	}
	t.Parallel()
	fx := newFixture(t, "")
	dir := fx.wd
	script := "#!/bin/sh\nenv | grep '^OOPS_' | sort > \"$1.env\"\ncat > \"$1.stdin\"\necho \"to $OOPS_TO_COLOR\"\necho oops >&2\n"
	if err := os.MkdirAll(filepath.Join(dir, "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hooks", "log.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	fx.reconfigure(t, `{"application-name": "api", "store": "rel", "hooks": {
		"pre-switch": ["./hooks/log.sh", "pre"],
		"post-switch": ["sh", "-c", "./hooks/log.sh post; exit 4"]}}`)
	b := newBoard(fx)
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Reason: "500s", Confirm: yes}); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(filepath.Join(dir, "pre.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OOPS_ACTION=promote\n", "OOPS_FROM_COLOR=blue\n", "OOPS_TO_COMMIT=" + v1 + "\n", "OOPS_REASON=500s\n", "OOPS_WHO=ada\n", LockTokenEnv + "="} {
		if !strings.Contains(string(env), want) {
			t.Errorf("the hook's environment:\n%s\nlacks %q", env, want)
		}
	}
	stdin, _ := os.ReadFile(filepath.Join(dir, "post.stdin"))
	var ev release.Event
	if err := json.Unmarshal(stdin, &ev); err != nil || ev.Action != release.ActionPromote || ev.Result != release.ResultOK {
		t.Errorf("post-switch stdin %q: %v", stdin, err)
	}
	for _, want := range []string{"hook pre-switch: to green\n", "hook pre-switch: oops\n", "hook post-switch: to green\n", "oops: hook post-switch (sh): exit status 4\n"} {
		if !strings.Contains(fx.errOut.String(), want) {
			t.Errorf("stderr:\n%s\nlacks %q", fx.errOut, want)
		}
	}
	runs := history(t, fx)[0].HookRuns()
	if len(runs) != 2 || runs[1].Exit != 4 || runs[1].Tail != "to green\noops" {
		t.Errorf("history records %+v", runs)
	}
}

// TestExecHooksTimeout: a hook past its timeout is killed with the
// process it started in the background.
func TestExecHooksTimeout(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	t.Parallel()
	dir := t.TempDir()
	exit, err := ExecHooks{}.RunHook(context.Background(), HookCall{
		Stage: StagePreSwitch, Dir: dir, Timeout: 300 * time.Millisecond,
		Args:   []string{"sh", "-c", "sleep 300 & echo $! > child; wait"},
		Output: func(string) {},
	})
	if exit != -1 || err == nil || err.Error() != "killed after 300ms (hook-timeout)" {
		t.Fatalf("RunHook = %d, %v; want killed after 300ms", exit, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	// SIGKILL was sent to the group; the child is gone or a zombie once
	// the kernel has delivered it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook's child %d outlived it: %s", pid, stat)
		}
	}
}

// TestExecHooksLeavingADaemon: a hook that starts a process in the
// background and exits 0 succeeded, though that process keeps its output
// open.
func TestExecHooksLeavingADaemon(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell hooks")
	}
	t.Parallel()
	dir := t.TempDir()
	var lines []string
	exit, err := ExecHooks{}.RunHook(context.Background(), HookCall{
		Stage: StagePostSwitch, Dir: dir, Timeout: time.Minute,
		Args:   []string{"sh", "-c", "sleep 60 & echo $! > daemon; echo started"},
		Output: func(l string) { lines = append(lines, l) },
	})
	if data, rerr := os.ReadFile(filepath.Join(dir, "daemon")); rerr == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 {
			if p, _ := os.FindProcess(pid); p != nil {
				_ = p.Kill()
			}
		}
	}
	if exit != 0 || err != nil || !slices.Equal(lines, []string{"started"}) {
		t.Fatalf("RunHook = %d, %v, output %q; want 0, started", exit, err, lines)
	}
}

// TestDoctorChecksHooks: doctor says which hook cannot run.
func TestDoctorChecksHooks(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	if err := os.WriteFile(filepath.Join(fx.wd, "smoke.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.wd, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fx.reconfigure(t, `{"application-name": "api", "store": "rel", "hooks": {"pre-switch": ["./smoke.sh"], "post-switch": ["sh", "-c", "true"], "on-failure": ["./page.sh"], "on-revert": ["./notes.txt"]}}`)
	var got *Check
	for _, c := range fx.runner().Doctor(context.Background()) {
		if c.Name == "hooks" {
			got = &c
		}
	}
	if got == nil || got.Status != "warn" || got.Detail != "on-revert: ./notes.txt: not an executable file; on-failure: ./page.sh: no such file or directory" {
		t.Fatalf("doctor's hooks check: %+v", got)
	}
	fx.reconfigure(t, `{"application-name": "api", "store": "rel", "hooks": {"pre-switch": ["./smoke.sh"], "post-switch": ["sh"]}}`)
	for _, c := range New(fx.d).Doctor(context.Background()) {
		if c.Name == "hooks" && (c.Status != "ok" || c.Detail != "pre-switch, post-switch: found") {
			t.Errorf("doctor's hooks check: %+v", c)
		}
	}
}

func TestHookTailKeepsTheEnd(t *testing.T) {
	long := strings.Repeat("é", hookTailBytes) // 2 bytes each
	got := tailOf([]string{"first", long, "last"})
	if !strings.HasPrefix(got, "...") || !strings.HasSuffix(got, "\nlast") || len(got) > hookTailBytes+3 || !utf8.ValidString(got) {
		t.Errorf("tail of %d bytes, valid UTF-8 %v: %.20q...%q", len(got), utf8.ValidString(got), got, got[len(got)-10:])
	}
}

// TestHookSwitchRunsStageHooks: oops hook switch (CodeDeploy) runs the
// pre-switch and post-switch hooks of any switch; a failing pre-switch
// refuses it.
func TestHookSwitchRunsStageHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, refuse := range []bool{false, true} {
		b := newLB()
		fx := hookFixture(t, b, Deployment{Commit: strings.Repeat("c", 40)})
		exits := map[string]int{}
		if refuse {
			exits[StagePreSwitch] = 2
		}
		f := withFakeHooks(t, fx, exits)
		env, err := fx.runner().HookEnv(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = fx.runner().HookSwitch(ctx, env, HookSwitchRequest{Confirm: agree})
		want := []string{StagePreSwitch, StagePostSwitch}
		if refuse {
			want = []string{StagePreSwitch, StageOnFailure}
			if !errors.Is(err, target.ErrUnhealthy) || b.applied != 0 {
				t.Errorf("refused hook switch: %v, %d applies", err, b.applied)
			}
		} else if err != nil || b.applied != 1 {
			t.Errorf("hook switch: %v, %d applies", err, b.applied)
		}
		if got := f.stages(); !slices.Equal(got, want) {
			t.Errorf("refuse=%v: hooks %v, want %v", refuse, got, want)
		}
	}
}

// TestHookShellScriptNotInjected: the script of ["sh", "-c", SCRIPT] is
// left to the shell, which expands $OOPS_REASON from the environment as
// the script quotes it. Expanded by oops first, a reason (typed by anyone
// who may roll back, or taken from a commit message by CI) would become
// shell code. An argument of a program that is not a shell still gets
// the value.
func TestHookShellScriptNotInjected(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell hooks")
	}
	t.Parallel()
	fx := newFixture(t, "")
	fx.reconfigure(t, `{"application-name": "api", "store": "rel", "hooks": {
		"post-rollback": ["/bin/sh", "-ec", "printf '%s' \"$OOPS_REASON\" > reason.txt; printf '%s' \"$0\" > arg.txt", "$OOPS_REASON"]}}`)
	reason := `"; touch pwned; echo "$(touch pwned2)`
	b := newBoard(fx)
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Reason: reason, Confirm: yes}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(fx.wd, f)); err == nil {
			t.Errorf("the reason ran as shell code (%s exists); stderr:\n%s", f, fx.errOut)
		}
	}
	for _, f := range []string{"reason.txt", "arg.txt"} {
		if got, err := os.ReadFile(filepath.Join(fx.wd, f)); err != nil || string(got) != reason {
			t.Errorf("%s = %q, %v; want the reason as typed", f, got, err)
		}
	}
}

func TestShellScript(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"sh", "-c", "x"}, 2},
		{[]string{"/bin/bash", "-lc", "x", "$OOPS_URL"}, 2},
		{[]string{"bash", "--norc", "-e", "-o", "pipefail", "-c", "x"}, 6},
		{[]string{"/usr/bin/env", "FOO=1", "sh", "-c", "x"}, 4},
		{[]string{"busybox", "sh", "-c", "x"}, 3},
		{[]string{"sh", "./hook.sh", "-c", "$OOPS_REASON"}, -1},
		{[]string{"./hook.sh", "-c", "$OOPS_REASON"}, -1},
		{[]string{"env"}, -1},
	}
	for _, tt := range tests {
		if got := shellScript(tt.args); got != tt.want {
			t.Errorf("shellScript(%q) = %d, want %d", tt.args, got, tt.want)
		}
	}
}
