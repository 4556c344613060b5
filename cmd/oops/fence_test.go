//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/testport"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// TestFencing stops (SIGSTOP) a real oops that holds the lock, long enough
// for a second operator to take the stale lock over and act; resumed, the
// first must change nothing more and say it lost the lock (exit 5), with a
// failed event in history.
func TestFencing(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	for name, fn := range map[string]func(*testing.T){
		"LocalRollbackStalledWhileVerifying": testFenceRollbackVerify,
		"LocalDeployStalledInHealthWait":     testFenceDeployHealthWait,
		"LocalStallNobodyUsed":               testFenceStallNobodyUsed,
	} {
		t.Run(name, func(t *testing.T) { t.Parallel(); fn(t) })
	}
}

// testFenceStallNobodyUsed: a deploy stopped longer than half its
// lock-ttl, but resumed before anyone took the lock over, renews its lease
// and finishes: a pause alone does not fail a command.
func testFenceStallNobodyUsed(t *testing.T) {
	r := newLocalRig(t, map[string]string{sha1: "", sha2: "slow", sha3: "slow", sha4: "slow"})
	r.must("deploy", sha1[:7], "--yes", "--verify-timeout", "0")
	for _, sha := range []string{sha3, sha4, sha2} {
		a := r.stallAt("waiting up to", "deploy", sha[:7], "--yes", "--verify-timeout", "0")
		time.Sleep(1500 * time.Millisecond) // past the lease margin (1s), within lock-ttl (2s)
		if out, code := a.resume(t); code != 0 {
			t.Fatalf("a deploy resumed before anyone took its lock: exit %d\n%s", code, out)
		}
		if got := r.served(); !strings.HasPrefix(got, "hello from "+sha[:7]) {
			t.Fatalf("after the deploy of %s the public listener serves %q", sha[:7], got)
		}
	}
}

// localRig is a local target in a temp dir: a directory store, the proxy
// running, lock-ttl 2s.
type localRig struct {
	t      *testing.T
	ctx    context.Context
	work   string
	public string
	env    []string
}

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
	sha3 = "3333333333333333333333333333333333333333"
	sha4 = "4444444444444444444444444444444444444444"
)

func newLocalRig(t *testing.T, releases map[string]string) *localRig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	pub, blue, green := testport.Get(t), testport.Get(t), testport.Get(t)
	r := &localRig{t: t, ctx: ctx, work: t.TempDir(), public: fmt.Sprintf("127.0.0.1:%d", pub)}
	rc := fmt.Sprintf(`{"application-name": "hello", "store": "releases", "target": "local",
  "listen": %q, "blue-port": %d, "green-port": %d, "command": ["./hello"],
  "drain-timeout": "1s", "lock-ttl": "2s"}`, r.public, blue, green)
	if err := os.WriteFile(filepath.Join(r.work, ".oopsrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	r.env = append(os.Environ(), "USER=tester", "HOME="+r.work)
	t.Cleanup(func() { killApps(filepath.Join(r.work, ".oops", "local")) })
	for sha, kind := range releases {
		data, err := helloTarball(kind)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(r.work, sha[:7]+".tar.gz")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r.must("publish", f, "--commit", sha)
	}
	proxy := r.cmd("proxy")
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Process.Signal(os.Interrupt); _ = proxy.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if res, err := http.Get("http://" + r.public + "/"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("oops proxy never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

func (r *localRig) cmd(args ...string) *exec.Cmd {
	c := exec.CommandContext(r.ctx, "oops", args...)
	c.Dir, c.Env = r.work, r.env
	return c
}

// run runs oops to the end and returns its output and exit code.
func (r *localRig) run(args ...string) (string, int) {
	r.t.Helper()
	out, err := r.cmd(args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	return string(out), 0
}

func (r *localRig) must(args ...string) string {
	r.t.Helper()
	out, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("oops %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// served is what the public listener answers now.
func (r *localRig) served() string {
	r.t.Helper()
	res, err := http.Get("http://" + r.public + "/")
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return strings.TrimSpace(string(b))
}

// stalled is an oops started in the background and stopped (SIGSTOP) as
// soon as its stderr shows a line containing at.
type stalled struct {
	cmd  *exec.Cmd
	out  strings.Builder
	mu   sync.Mutex
	done chan error
}

func (r *localRig) stallAt(at string, args ...string) *stalled {
	r.t.Helper()
	s := &stalled{cmd: r.cmd(args...), done: make(chan error, 1)}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, at) {
				once.Do(func() {
					r.stopOutsideStoreWrites(s.cmd.Process)
					close(seen)
				})
			}
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
		}
	}()
	go func() { err := s.cmd.Wait(); pw.Close(); s.done <- err }()
	select {
	case <-seen:
	case err := <-s.done:
		r.t.Fatalf("oops %s ended (%v) before %q:\n%s", strings.Join(args, " "), err, at, s.output())
	case <-r.ctx.Done():
		r.t.Fatalf("oops %s never reached %q", strings.Join(args, " "), at)
	}
	return s
}

// stopOutsideStoreWrites stops p at a moment it holds none of the
// directory store's write locks. Stopped inside one (a heartbeat being
// written), it would block every other writer of that object by design
// (the store refuses to break the lock of a process that may still
// write), which is not the stall these tests are about.
func (r *localRig) stopOutsideStoreWrites(p *os.Process) {
	locks := filepath.Join(r.work, "releases", ".oops-store", "locks")
	for range 100 {
		_ = p.Signal(syscall.SIGSTOP)
		if !anyFlocked(locks) {
			return
		}
		_ = p.Signal(syscall.SIGCONT)
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("oops held a store write lock at every try")
}

// anyFlocked tells whether a process holds a lock on a file in dir.
func anyFlocked(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		f.Close()
		if err != nil {
			return true
		}
	}
	return false
}

func (s *stalled) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// resume continues the stopped oops and waits for its exit code.
func (s *stalled) resume(t *testing.T) (string, int) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		time.Sleep(50 * time.Millisecond) // let the reader drain the pipe
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return s.output(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return s.output(), 0
	case <-time.After(60 * time.Second):
		// SIGQUIT: the Go runtime prints every goroutine, to see where.
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
		time.Sleep(100 * time.Millisecond)
		t.Fatalf("resumed oops did not end:\n%s", s.output())
	}
	return "", 0
}

// events are the application's history, oldest first.
func (r *localRig) events() []release.Event {
	r.t.Helper()
	evs, err := store.ListEvents(context.Background(), dir.New(filepath.Join(r.work, "releases")), "hello", store.EventQuery{})
	if err != nil {
		r.t.Fatal(err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// testFenceRollbackVerify: A rolls back and is stopped while verifying,
// longer than its verify-timeout; meanwhile B deploys and rolls back
// (marking B's release BAD). A resumed finds its verification failed and
// wants to switch back, onto the release B just marked BAD: it must not.
func testFenceRollbackVerify(t *testing.T) {
	r := newLocalRig(t, map[string]string{sha1: "slow", sha2: "", sha3: ""})
	r.must("deploy", sha1[:7], "--yes", "--verify-timeout", "0") // green live: 1111111 (slow health)
	r.must("deploy", sha2[:7], "--yes", "--verify-timeout", "0") // blue live: 2222222
	if got := r.served(); got != "hello from 2222222 (blue)" {
		t.Fatalf("before: %q", got)
	}

	// A: the verification's first health check takes 1.5s: stop it there.
	a := r.stallAt("verifying green", "rollback", "--yes", "--force", "--verify-timeout", "3s", "-m", "A")
	// B waits out A's lock-ttl, deploys 3333333 to blue and rolls back
	// from it: green (1111111) is live and 3333333 is BAD.
	if out, code := r.run("deploy", sha3[:7], "--yes", "--verify-timeout", "0", "--lock-wait", "30s", "-m", "B"); code != 0 {
		t.Fatalf("B's deploy: exit %d\n%s", code, out)
	}
	if out, code := r.run("rollback", "--yes", "--verify-timeout", "0", "-m", "B: 3333333 is bad"); code != 0 {
		t.Fatalf("B's rollback: exit %d\n%s", code, out)
	}
	if got := r.served(); got != "hello from 1111111 (green)" {
		t.Fatalf("after B: %q", got)
	}
	time.Sleep(time.Second) // A's verify-timeout (3s) is long past now

	out, code := a.resume(t)
	if code != 5 || !strings.Contains(out, "lost the lock") {
		t.Errorf("A resumed: exit %d, want 5 and \"lost the lock\":\n%s", code, out)
	}
	if strings.Contains(out, "traffic is back on blue") {
		t.Errorf("A switched back over B's work:\n%s", out)
	}
	if got := r.served(); got != "hello from 1111111 (green)" {
		t.Errorf("after A resumed, the public listener serves %q; want B's choice, 1111111 on green", got)
	}
	r.wantLostEvent("A")
}

// wantLostEvent checks that the command run with -m reason left a failed
// event that says it lost the lock.
func (r *localRig) wantLostEvent(reason string) {
	r.t.Helper()
	var ev *release.Event
	for _, e := range r.events() {
		if e.Reason == reason {
			ev = &e
		}
	}
	if ev == nil || ev.Result != release.ResultFailed || !strings.Contains(ev.Error, "lost the lock to tester") {
		r.t.Errorf("event of %q: %+v; want a failed event that says it lost the lock, and to whom", reason, ev)
	}
}

// testFenceDeployHealthWait: A deploys to green and is stopped while its
// release's health check is pending; B takes the stale lock and deploys
// another release to the same color and switches to it. A resumed must not
// record its commit over B's, stop B's process or switch.
func testFenceDeployHealthWait(t *testing.T) {
	r := newLocalRig(t, map[string]string{sha1: "", sha2: "", sha3: "slow", sha4: ""})
	r.must("deploy", sha1[:7], "--yes", "--verify-timeout", "0") // green live: 1111111
	r.must("deploy", sha2[:7], "--yes", "--verify-timeout", "0") // blue live: 2222222, green off: 1111111

	a := r.stallAt("waiting up to", "deploy", sha3[:7], "--yes", "--verify-timeout", "0", "-m", "A")
	if out, code := r.run("deploy", sha4[:7], "--yes", "--verify-timeout", "0", "--lock-wait", "30s", "-m", "B"); code != 0 {
		t.Fatalf("B's deploy: exit %d\n%s", code, out)
	}
	if got := r.served(); got != "hello from 4444444 (green)" {
		t.Fatalf("after B: %q", got)
	}

	out, code := a.resume(t)
	if code != 5 || !strings.Contains(out, "lost the lock") {
		t.Errorf("A resumed: exit %d, want 5 and \"lost the lock\":\n%s", code, out)
	}
	if got := r.served(); got != "hello from 4444444 (green)" {
		t.Errorf("after A resumed, the public listener serves %q; want B's 4444444 on green", got)
	}
	st := r.must("status")
	if !strings.Contains(st, "4444444") || strings.Contains(st, "no process started by oops") {
		t.Errorf("status after A resumed lost B's record of green:\n%s", st)
	}
	// The next deploy, to blue, works: nothing was left half-written.
	if out, code := r.run("deploy", sha1[:7], "--yes", "--verify-timeout", "0"); code != 0 {
		t.Errorf("the next deploy: exit %d\n%s", code, out)
	}
	r.wantLostEvent("A")
}

// TestFencingAtEachStep stops a deploy or a rollback that holds the lock at
// each step it reports (SIGSTOP when its progress line appears), lets
// another operator take the stale lock and deploy, then resumes it (SIGCONT).
// Whatever step it was stopped at, the resumed command changes nothing
// more: it exits 5 saying it lost the lock, traffic and the off color stay
// as the other operator left them, and the next deploy works.
func TestFencingAtEachStep(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	for _, tc := range []struct {
		name string
		at   string
		args []string
	}{
		{"deploy/fetching", "fetching", []string{"deploy", sha3[:7]}},
		{"deploy/stopping", "stopping green", []string{"deploy", sha3[:7]}},
		{"deploy/started", "started 3333333", []string{"deploy", sha3[:7]}},
		{"deploy/healthy", "3333333 is healthy", []string{"deploy", sha3[:7]}},
		{"rollback/gate", "checking health of green", []string{"rollback"}},
		{"rollback/switched", "switched local proxy", []string{"rollback", "--verify-timeout", "5s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// 3333333 is slow to answer its health check, so every step
			// of its deploy lasts long enough to be stopped in.
			r := newLocalRig(t, map[string]string{sha1: "slow", sha2: "", sha3: "slow", sha4: ""})
			r.must("deploy", sha1[:7], "--yes", "--verify-timeout", "0") // green live: 1111111
			r.must("deploy", sha2[:7], "--yes", "--verify-timeout", "0") // blue live, green off: 1111111

			args := append(append([]string{}, tc.args...), "--yes", "-m", "A")
			if tc.args[0] == "deploy" {
				args = append(args, "--verify-timeout", "0")
			}
			a := r.stallAt(tc.at, args...)
			// B waits out A's lock-ttl (2s) and deploys to the off color.
			out, code := r.run("deploy", sha4[:7], "--yes", "--verify-timeout", "0", "--lock-wait", "30s", "-m", "B")
			if code != 0 {
				t.Fatalf("B's deploy: exit %d\n%s", code, out)
			}
			want := r.served()
			if !strings.HasPrefix(want, "hello from 4444444") {
				t.Fatalf("after B's deploy the public listener serves %q", want)
			}
			before := r.must("status")

			out, code = a.resume(t)
			if code != 5 || !strings.Contains(out, "lost the lock") {
				t.Errorf("A resumed: exit %d, want 5 and \"lost the lock\":\n%s", code, out)
			}
			if got := r.served(); got != want {
				t.Errorf("after A resumed the public listener serves %q, want %q as B left it", got, want)
			}
			if after := r.must("status"); pidless(after) != pidless(before) {
				t.Errorf("A changed the target after it lost the lock:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if out, code := r.run("deploy", sha2[:7], "--yes", "--verify-timeout", "0"); code != 0 {
				t.Errorf("the next deploy: exit %d\n%s", code, out)
			}
			r.wantLostEvent("A")
		})
	}
}

// pidless is status output without the health column's timing-dependent
// parts: the lines that say what runs where.
func pidless(status string) string {
	var keep []string
	for _, l := range strings.Split(status, "\n") {
		// Not the limits line: its count of open connections moves with
		// the test's own requests, not with what A may change.
		if strings.HasPrefix(l, "listener\tlimits:") {
			continue
		}
		if strings.HasPrefix(l, "blue\t") || strings.HasPrefix(l, "green\t") || strings.HasPrefix(l, "listener\t") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
