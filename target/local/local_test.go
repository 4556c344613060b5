//go:build unix

package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// The example app, built once per test run.
var helloBuild = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "oops-hello-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", out, "../../examples/hello")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build examples/hello: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
})

// hello returns the files of a release of the example app: good, or
// broken (its health check always fails, as a bad release's would).
func hello(t *testing.T, kind string) []entry {
	t.Helper()
	bin, err := helloBuild()
	if err != nil {
		t.Fatal(err)
	}
	if kind == "broken" {
		return []entry{
			{Name: "hello", Body: "#!/bin/sh\nHELLO_HEALTHY=false exec ./hello.bin \"$@\"\n", Mode: 0o755},
			{Name: "hello.bin", Body: string(bin), Mode: 0o755},
		}
	}
	return []entry{{Name: "hello", Body: string(bin), Mode: 0o755}}
}

// packed caches artifacts by content.
var packed sync.Map

// env is one local target with its own state directory and ports, and the
// releases it can deploy (artifacts served from memory, as a store would).
type env struct {
	t   *testing.T
	tgt *Target
	dir string

	mu        sync.Mutex
	artifacts map[string][]byte
	n         int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: filepath.Join(t.TempDir(), "s"), artifacts: map[string][]byte{}}
	tgt, err := New(Options{
		App: "hello", StateDir: e.dir, Listen: "127.0.0.1:0",
		BluePort: freePort(t), GreenPort: freePort(t),
		Command:      []string{"./hello"},
		DrainTimeout: 5 * time.Second,
		StopGrace:    5 * time.Second,
		PollInterval: 20 * time.Millisecond,
		Open: func(_ context.Context, rel release.Release) (io.ReadCloser, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			b, ok := e.artifacts[rel.Commit]
			if !ok {
				return nil, release.ErrNotPublished
			}
			return io.NopCloser(bytes.NewReader(b)), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.tgt = tgt
	// Every process a test starts is stopped, whatever happened.
	t.Cleanup(func() {
		for _, c := range []release.Color{release.Blue, release.Green} {
			if rec, err := readColor(e.dir, c, 0); err == nil && e.tgt.procs.alive(rec) {
				_ = signalGroup(rec.PID, syscall.SIGKILL)
			}
		}
	})
	return e
}

// release registers an artifact of entries and returns its release.
func (e *env) release(entries []entry, asZip bool) release.Release {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	sha := fmt.Sprintf("%040x", 0xa11ce000+e.n)
	// Compressing megabytes is slow: once per distinct artifact, known
	// by all its content (a prefix of the first file took one test's
	// script for another's that differed further on).
	h := sha256.New()
	fmt.Fprint(h, asZip, len(entries))
	for _, en := range entries {
		fmt.Fprintf(h, "\x00%q %q %v %d %o %d\x00", en.Name, en.Link, en.Dir, en.Type, en.Mode, len(en.Body))
		io.WriteString(h, en.Body)
	}
	key := string(h.Sum(nil))
	if b, ok := packed.Load(key); ok {
		e.artifacts[sha] = b.([]byte)
	} else if asZip {
		e.artifacts[sha] = zipOf(e.t, entries)
	} else {
		e.artifacts[sha] = tarGz(e.t, entries)
	}
	packed.Store(key, e.artifacts[sha])
	return release.Release{Commit: sha, App: "hello", Key: "hello/hello-" + sha + ".tar.gz"}
}

// proxy runs a proxy for the target on fresh loopback listeners.
func (e *env) proxy() *runningProxy {
	po := e.tgt.ProxyOptions()
	po.CheckInterval = 50 * time.Millisecond
	return startProxy(e.t, po)
}

var startedPID = regexp.MustCompile(`pid (\d+)`)

// deploy installs rel on the off color and returns the color and its pid.
func (e *env) deploy(rel release.Release, timeout time.Duration) (release.Color, int, error) {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.tgt.State(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	pid := 0
	_, err = e.tgt.Deploy(ctx, target.DeployRequest{
		Release: rel, Color: st.Off.Color, Timeout: timeout,
		Progress: func(format string, args ...any) {
			line := fmt.Sprintf(format, args...)
			e.t.Log(line)
			if m := startedPID.FindStringSubmatch(line); m != nil && strings.HasPrefix(line, "started") {
				pid, _ = strconv.Atoi(m[1])
			}
		},
	})
	if err == nil {
		err = e.tgt.SetCommit(ctx, st.Off.Color, rel.Commit)
	}
	return st.Off.Color, pid, err
}

// switchTo runs the shared health-gated switch, as oops deploy/rollback do.
func (e *env) switchTo(c release.Color) {
	e.t.Helper()
	res, err := target.Switch(context.Background(), e.tgt, target.SwitchOptions{To: c, VerifyTimeout: 5 * time.Second, Logf: e.t.Logf})
	if err != nil {
		e.t.Fatal(err)
	}
	if !res.Switched {
		e.t.Fatalf("switch to %s: nothing switched", c)
	}
}

func greeting(rel release.Release, c release.Color) string {
	return fmt.Sprintf("hello from %s (%s)\n", rel.Short(), c)
}

func TestLocalDeploySwitchRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rp := e.proxy()
	a, b := e.release(hello(t, "good"), false), e.release(hello(t, "good"), true)

	colorA, pidA, err := e.deploy(a, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if colorA != release.Green {
		t.Fatalf("first deploy went to %s, want green (blue starts live)", colorA)
	}
	if body, _ := get(t, nil, rp.prev); body != greeting(a, release.Green) {
		t.Fatalf("preview before the switch: %q", body)
	}
	e.switchTo(release.Green)
	if body, _ := get(t, nil, rp.url); body != greeting(a, release.Green) {
		t.Fatalf("after deploying A: %q", body)
	}

	colorB, pidB, err := e.deploy(b, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if colorB != release.Blue {
		t.Fatalf("second deploy went to %s, want blue", colorB)
	}
	e.switchTo(release.Blue)
	if body, _ := get(t, nil, rp.url); body != greeting(b, release.Blue) {
		t.Fatalf("after deploying B: %q", body)
	}

	st, err := e.tgt.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range []struct {
		got       target.ColorState
		color     release.Color
		commit    string
		pid, want int
	}{
		{st.Live, release.Blue, b.Commit, pidB, 100},
		{st.Off, release.Green, a.Commit, pidA, 0},
	} {
		if cs.got.Color != cs.color || cs.got.Commit != cs.commit || cs.got.PID != cs.pid || cs.got.Weight != cs.want {
			t.Errorf("state of %s: %+v, want commit %s pid %d weight %d", cs.color, cs.got, release.Short(cs.commit), cs.pid, cs.want)
		}
		if cs.got.Healthy == nil || !*cs.got.Healthy {
			t.Errorf("%s: not reported healthy: %+v", cs.color, cs.got.Instances)
		}
		// Detached: each app leads its own session (and group), so it outlives oops.
		if pgid, err := syscall.Getpgid(cs.pid); err != nil || pgid != cs.pid {
			t.Errorf("%s pid %d: process group %d (%v), want its own", cs.color, cs.pid, pgid, err)
		}
	}

	// Rollback: the off color still runs A; one switch, nothing restarted.
	e.switchTo(release.Green)
	if body, _ := get(t, nil, rp.url); body != greeting(a, release.Green) {
		t.Fatalf("after rollback: %q", body)
	}
	if !procAlive(pidB, "") || !procAlive(pidA, "") {
		t.Fatalf("after rollback both releases should still run (A pid %d, B pid %d)", pidA, pidB)
	}
}

func TestLocalNeverHealthyReleaseIsStoppedAndNothingSwitches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rp := e.proxy()
	good, bad := e.release(hello(t, "good"), false), e.release(hello(t, "broken"), false)
	if _, _, err := e.deploy(good, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.switchTo(release.Green)

	color, pid, err := e.deploy(bad, 3*time.Second)
	if !errors.Is(err, target.ErrDeployFailed) {
		t.Fatalf("deploying a release that never gets healthy: %v, want ErrDeployFailed", err)
	}
	for _, want := range []string{"not healthy after 3s", "503", "listening on", "traffic was not switched"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error should mention %q (with the log tail):\n%v", want, err)
		}
	}
	if color != release.Blue || pid == 0 {
		t.Fatalf("the bad release went to %s pid %d", color, pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for procAlive(pid, "") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if procAlive(pid, "") {
		t.Fatalf("the unhealthy release (pid %d) is still running", pid)
	}
	if body, _ := get(t, nil, rp.url); body != greeting(good, release.Green) {
		t.Fatalf("live traffic after the failed deploy: %q", body)
	}
	st, err := e.tgt.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Color != release.Green || st.Off.Commit != "" || st.Off.Instances[0].State != procFailed {
		t.Fatalf("state after the failed deploy: live %+v off %+v", st.Live, st.Off)
	}
	// And a switch to it is refused by the health gate.
	if _, err := target.Switch(context.Background(), e.tgt, target.SwitchOptions{}); !errors.Is(err, target.ErrUnhealthy) {
		t.Fatalf("switch to the failed color: %v, want ErrUnhealthy", err)
	}
}

// TestLocalFailedDeployRestoresTheWarmRelease: a release that never gets
// healthy replaced the previous release on the off color; oops starts that
// one again, so rollback still has a warm release to go to.
func TestLocalFailedDeployRestoresTheWarmRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rp := e.proxy()
	a, b := e.release(hello(t, "good"), false), e.release(hello(t, "good"), true)
	bad := e.release(hello(t, "broken"), false)
	if _, _, err := e.deploy(a, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.switchTo(release.Green)
	if _, _, err := e.deploy(b, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.switchTo(release.Blue)

	// The off color (green) runs A; the bad release replaces it and fails.
	color, _, err := e.deploy(bad, 3*time.Second)
	if !errors.Is(err, target.ErrDeployFailed) || color != release.Green {
		t.Fatalf("deploying a release that never gets healthy to %s: %v, want ErrDeployFailed on green", color, err)
	}
	if want := release.Short(a.Commit) + " was restarted on green and is healthy"; !strings.Contains(err.Error(), want) {
		t.Errorf("error should say %q:\n%v", want, err)
	}
	st, err := e.tgt.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Off.Color != release.Green || st.Off.Commit != a.Commit || st.Off.Healthy == nil || !*st.Off.Healthy {
		t.Fatalf("off color after the failed deploy: %+v, want A running and healthy", st.Off)
	}
	// Rollback goes to A, as before the failed deploy.
	e.switchTo(release.Green)
	if body, _ := get(t, nil, rp.url); body != greeting(a, release.Green) {
		t.Fatalf("after rollback: %q, want A", body)
	}
}

func TestLocalRefusesToDeployOnTheLiveColor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rel := e.release(hello(t, "good"), false)
	_, err := e.tgt.Deploy(context.Background(), target.DeployRequest{Release: rel, Color: release.Blue})
	if !errors.Is(err, target.ErrDeployFailed) || !strings.Contains(err.Error(), "it is live") {
		t.Fatalf("deploy on the live color: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.dir, releaseDir)); len(entries) != 0 {
		t.Fatalf("something was unpacked: %v", entries)
	}
}

func TestLocalRequestsInFlightSurviveASwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rp := e.proxy()
	a, b := e.release(hello(t, "good"), false), e.release(hello(t, "good"), false)
	for _, rel := range []release.Release{a, b} {
		c, _, err := e.deploy(rel, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		e.switchTo(c)
	}
	// B is live on blue, A warm on green. Start a slow request and a stream
	// on B, switch to A mid-flight: both finish, from B.
	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		res, err := http.Get(rp.url + "/slow?d=700ms")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		slow <- result{string(body), err}
	}()
	res, err := http.Get(rp.url + "/stream?n=4&every=150ms")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	e.switchTo(release.Green)
	if body, _ := get(t, nil, rp.url); body != greeting(a, release.Green) {
		t.Fatalf("new request after the switch: %q", body)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut by the switch: %v", err)
	}
	want := ""
	for i := range 4 {
		want += fmt.Sprintf("%d %s (blue)\n", i, b.Short())
	}
	if got := first + string(rest); got != want {
		t.Fatalf("stream across the switch:\n%s\nwant:\n%s", got, want)
	}
	r := <-slow
	if r.err != nil || r.body != fmt.Sprintf("slow 700ms from %s (blue)\n", b.Short()) {
		t.Fatalf("slow request across the switch: %q, %v", r.body, r.err)
	}
}

func TestLocalProxyRestartKeepsTheLiveColor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rp := e.proxy()
	a := e.release(hello(t, "good"), false)
	if _, _, err := e.deploy(a, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.switchTo(release.Green)
	rp.stop(t)

	st, err := e.tgt.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Color != release.Green || len(st.Listeners) == 0 || !strings.Contains(st.Listeners[0], "proxy is not running") {
		t.Fatalf("state with the proxy down: live %s, listeners %q", st.Live.Color, st.Listeners)
	}
	rp2 := e.proxy()
	if body, _ := get(t, nil, rp2.url); body != greeting(a, release.Green) {
		t.Fatalf("after the proxy restarted: %q", body)
	}
}

func TestLocalSwitchWithNoProxyRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.release(hello(t, "good"), false)
	if _, _, err := e.deploy(a, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.switchTo(release.Green)
	ls, err := readLive(e.dir)
	if err != nil || ls.Live != release.Green {
		t.Fatalf("persisted live color: %+v, %v", ls, err)
	}
	rp := e.proxy()
	if body, _ := get(t, nil, rp.url); body != greeting(a, release.Green) {
		t.Fatalf("proxy started after the switch serves: %q", body)
	}
}

func TestLocalRedeployReplacesTheOldProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.release(hello(t, "good"), false), e.release(hello(t, "good"), false)
	_, pidA, err := e.deploy(a, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Green stays off: deploying again replaces A there.
	_, pidB, err := e.deploy(b, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if pidA == pidB || procAlive(pidA, "") {
		t.Fatalf("old process %d should be stopped (new %d)", pidA, pidB)
	}
	if _, err := os.Stat(filepath.Join(e.dir, releaseDir, a.Commit+"-green")); !os.IsNotExist(err) {
		t.Fatalf("A's release directory should be removed: %v", err)
	}
	st, err := e.tgt.State(context.Background())
	if err != nil || st.Off.Commit != b.Commit || st.Off.PID != pidB {
		t.Fatalf("off color after redeploy: %+v, %v", st.Off, err)
	}
}

func TestLocalBadArtifactChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.release(hello(t, "good"), false)
	_, pidA, err := e.deploy(a, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bad := e.release(hello(t, "good"), false)
	e.mu.Lock()
	e.artifacts[bad.Commit] = []byte("<html>not an archive</html>")
	e.mu.Unlock()
	if _, _, err := e.deploy(bad, 5*time.Second); !errors.Is(err, target.ErrDeployFailed) || !strings.Contains(err.Error(), "not a zip or tar.gz") {
		t.Fatalf("bad artifact: %v", err)
	}
	if !procAlive(pidA, "") {
		t.Fatal("a bad artifact stopped the release already on the color")
	}
}

func TestLocalReviveRestartsAGoneProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.release(hello(t, "good"), false)
	_, pid, err := e.deploy(a, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := signalGroup(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for procAlive(pid, "") {
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.tgt.Probe(context.Background(), release.Green); !errors.Is(err, target.ErrUnhealthy) || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("probe of a dead color: %v", err)
	}
	if err := e.tgt.Revive(context.Background(), t.Logf); err != nil {
		t.Fatal(err)
	}
	if err := e.tgt.Verify(context.Background(), release.Green, 10*time.Second); err != nil {
		t.Fatalf("after revive: %v", err)
	}
	st, err := e.tgt.State(context.Background())
	if err != nil || st.Off.PID == 0 || st.Off.PID == pid || st.Off.Commit != a.Commit {
		t.Fatalf("after revive: %+v, %v", st.Off, err)
	}
}
