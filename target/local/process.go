package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oops-deploy/oops/release"
)

// child is a process this oops process started. It is reaped here, so it
// never lingers as a zombie while we are still running (tests, the proxy).
type child struct {
	pid  int
	done chan struct{}
	err  error
}

// procs tracks the children of one Target or supervisor.
type procs struct {
	mu       sync.Mutex
	children map[int]*child
}

// envFor is the environment of an app process: ours plus what the issue
// promises the command (PORT, OOPS_COLOR, OOPS_COMMIT, OOPS_RELEASE_DIR).
func envFor(cs colorState) []string {
	return []string{
		"PORT=" + strconv.Itoa(cs.Port),
		"OOPS_COLOR=" + string(cs.Color),
		"OOPS_COMMIT=" + cs.Commit,
		"OOPS_RELEASE_DIR=" + cs.ReleaseDir,
	}
}

// expandArgs replaces $PORT, ${OOPS_COLOR}, ... in the command's arguments
// with the values the app gets; any other $NAME is left as written.
func expandArgs(args []string, env []string) []string {
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = os.Expand(a, func(k string) string {
			if v, ok := vals[k]; ok {
				return v
			}
			return "$" + k
		})
	}
	return out
}

// start launches cs.Command in cs.ReleaseDir on cs.Port, detached from this
// process (own session), with output appended to cs.Log. It fills in PID,
// ProcStart and Started.
func (ps *procs) start(cs *colorState, now time.Time, extra []string) error {
	if len(cs.Command) == 0 {
		return errors.New("no command to start")
	}
	env := envFor(*cs)
	// What the command passes on (the lock token), then the color's own.
	base := append(os.Environ(), extra...)
	argv := expandArgs(cs.Command, env)
	prog := argv[0]
	// A bare name that exists in the release runs from there, not from PATH.
	if !strings.ContainsRune(prog, '/') {
		if fi, err := os.Stat(filepath.Join(cs.ReleaseDir, prog)); err == nil && !fi.IsDir() {
			prog = "./" + prog
		}
	}
	logf, err := os.OpenFile(cs.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	c := exec.Command(prog, argv[1:]...)
	// exec resolves a relative program path against Dir.
	c.Dir = cs.ReleaseDir
	c.Env = append(base, env...)
	c.Stdout, c.Stderr = logf, logf
	detach(c)
	fmt.Fprintf(logf, "--- oops: %s starting %s on port %d (commit %s): %s\n",
		now.Format(time.RFC3339), cs.Color, cs.Port, release.Short(cs.Commit), strings.Join(argv, " "))
	err = c.Start()
	for try := 0; err != nil && textBusy(err) && try < 20; try++ {
		time.Sleep(25 * time.Millisecond)
		c = exec.Command(prog, argv[1:]...)
		c.Dir, c.Env, c.Stdout, c.Stderr = cs.ReleaseDir, append(base, env...), logf, logf
		detach(c)
		err = c.Start()
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	ch := &child{pid: c.Process.Pid, done: make(chan struct{})}
	ps.mu.Lock()
	if ps.children == nil {
		ps.children = map[int]*child{}
	}
	ps.children[ch.pid] = ch
	ps.mu.Unlock()
	go func() {
		ch.err = c.Wait()
		close(ch.done)
		ps.mu.Lock()
		delete(ps.children, ch.pid)
		ps.mu.Unlock()
	}()
	cs.PID = ch.pid
	cs.ProcStart = procStartTime(ch.pid)
	cs.Started = now
	cs.Status = procRunning
	cs.Env = env
	return nil
}

// exited returns a channel closed when pid (one of ours) exits, and its
// exit error; nil when pid was not started by this process.
func (ps *procs) exited(pid int) (<-chan struct{}, func() error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ch := ps.children[pid]
	if ch == nil {
		return nil, nil
	}
	return ch.done, func() error { return ch.err }
}

// alive reports whether the recorded process still runs.
func (ps *procs) alive(cs colorState) bool {
	if cs.PID <= 0 {
		return false
	}
	if done, _ := ps.exited(cs.PID); done != nil {
		select {
		case <-done:
			return false
		default:
			// Not reaped yet, but it may be a zombie already.
		}
	}
	return procAlive(cs.PID, cs.ProcStart)
}

// stop ends the recorded process: SIGTERM to its process group, then
// SIGKILL after grace. Stopping something already gone is not an error.
func (ps *procs) stop(cs colorState, grace time.Duration) error {
	if !ps.alive(cs) {
		return nil
	}
	if err := signalGroup(cs.PID, sigTerm); err != nil {
		return fmt.Errorf("stop %s (pid %d): %w", cs.Color, cs.PID, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !ps.alive(cs) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = signalGroup(cs.PID, sigKill)
	for range 100 {
		if !ps.alive(cs) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("stop %s: pid %d survived SIGKILL", cs.Color, cs.PID)
}

// waitPortFree waits until nothing listens on 127.0.0.1:port, so the health
// check that follows talks to the new process and not a leftover.
func waitPortFree(ctx context.Context, port int, wait time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(wait)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d is in use by a program oops did not start (%v): stop it, or set another port in .oopsrc", port, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail returns the last n lines of a log file, for error messages.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
