package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/release/archive"
	"github.com/oops-deploy/oops/target"
)

// procStopping marks a color whose process is being replaced, so a proxy
// starting at that moment does not bring the old one back.
const procStopping = "stopping"

// logName is the app's stdout and stderr, kept in its release directory.
const logName = "oops.log"

// Preflight reports settings a deploy needs and lacks, before anything
// is touched.
func (t *Target) Preflight() error {
	switch {
	case len(t.opts.Command) == 0:
		return errors.New(`local target: no "command" to start a release with, e.g. "command": ["./hello"]`)
	case t.opts.Open == nil:
		return errors.New("local target: no release store to read artifacts from")
	}
	return nil
}

// Deploy puts req.Release on req.Color: fetch and unpack it into its own
// directory, drain and stop what ran on that color, start the release on
// the color's port, and wait until its health check passes. A release that
// does not get healthy is stopped and the error carries its log's tail. It
// never touches the live color and switches nothing.
func (t *Target) Deploy(ctx context.Context, req target.DeployRequest) (*target.Deployment, error) {
	logf := req.Progress
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c := req.Color
	sha := req.Release.Commit
	switch {
	case !c.Valid():
		return nil, fmt.Errorf("deploy: %q is not a color", c)
	case !release.IsFullSHA(sha):
		return nil, fmt.Errorf("deploy: %q is not a full commit SHA", sha)
	case len(t.opts.Command) == 0:
		return nil, fmt.Errorf(`%w: local target: no "command" in .oopsrc to start the release with, e.g. "command": ["./hello"]`, target.ErrMisconfigured)
	case t.opts.Open == nil:
		return nil, fmt.Errorf("%w: local target: no release store to read artifacts from", target.ErrMisconfigured)
	}
	live, ps, err := t.live(ctx, false)
	if err != nil {
		return nil, err
	}
	if c == live {
		return nil, fmt.Errorf("%w: refusing to deploy on %s: it is live (deploys go to the off color, %s)", target.ErrDeployFailed, c, c.Other())
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultDeployTimeout
	}
	root := filepath.Join(t.opts.StateDir, releaseDir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create release directory: %w", err)
	}

	// Fetch, verify and unpack first: a bad artifact changes nothing.
	if verified(req.Release) {
		logf("fetching %s (%d bytes, sha256 %s)", req.Release.Key, req.Release.Size, req.Release.SHA256)
	} else {
		logf("fetching %s: UNVERIFIED: a bare artifact has no oops metadata (size, SHA-256) to check its bytes against", req.Release.Key)
	}
	tmp, err := t.fetchAndUnpack(ctx, req.Release, root, c)
	if errors.Is(err, target.ErrIntegrity) {
		return nil, fmt.Errorf("deploy %s: %w", release.Short(sha), err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", target.ErrDeployFailed, req.Release.Key, err)
	}
	defer removeQuiet(tmp)

	port := t.port(c)
	old, err := readColor(t.opts.StateDir, c, port)
	if err != nil {
		return nil, err
	}
	if err := t.stopColor(ctx, old, ps != nil, logf); err != nil {
		return nil, fmt.Errorf("%w: %v", target.ErrDeployFailed, err)
	}
	if err := waitPortFree(ctx, port, 5*time.Second); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", target.ErrDeployFailed, c, err)
	}

	dst := filepath.Join(root, sha+"-"+string(c))
	// The previous release's directory stays until the new one is healthy,
	// so a failed deploy can put it back: the off color is the rollback.
	var prevDir string
	if old.ReleaseDir != "" && old.ReleaseDir != dst && filepath.Dir(old.ReleaseDir) == root {
		prevDir = old.ReleaseDir
	}
	removeQuiet(dst)
	if err := os.Rename(tmp, dst); err != nil {
		return nil, fmt.Errorf("%w: move release into place: %v", target.ErrDeployFailed, err)
	}
	cs := colorState{
		Color: c, Port: port, Commit: sha, ReleaseDir: dst,
		Log: filepath.Join(dst, logName), Command: t.opts.Command,
		Installing: true,
	}
	if err := t.startProc(ctx, &cs); err != nil {
		cs.Status, cs.Error, cs.Commit = procFailed, err.Error(), ""
		_ = t.saveColor(ctx, cs)
		return nil, fmt.Errorf("%w: %s: %v (command from .oopsrc, run in %s)", target.ErrDeployFailed, c, err, dst)
	}
	if err := t.saveColor(ctx, cs); err != nil {
		_ = t.stopProc(ctx, cs)
		return nil, err
	}
	logf("started %s on %s: pid %d, port %d, log %s", release.Short(sha), c, cs.PID, port, cs.Log)

	if err := t.waitHealthy(ctx, cs, timeout, logf); err != nil {
		// Stop it whatever stopped us (even Ctrl-C): nothing half-started stays.
		_ = t.stopProc(ctx, cs)
		failed := cs
		failed.Status, failed.Error, failed.Commit, failed.PID, failed.ProcStart = procFailed, err.Error(), "", 0, ""
		_ = t.saveColor(ctx, failed)
		msg := fmt.Sprintf("%s on %s: %v; it was stopped and traffic was not switched", release.Short(sha), c, err)
		if tail := logTail(cs.Log, 15); tail != "" {
			msg += "\nlast lines of " + cs.Log + ":\n" + tail
		}
		if prevDir != "" && old.Commit != "" && old.Status == procRunning {
			msg += "\n" + t.restorePrevious(context.WithoutCancel(ctx), old, timeout, logf)
		}
		return nil, fmt.Errorf("%w: %s", target.ErrDeployFailed, msg)
	}
	if err := t.markVerified(ctx, cs); err != nil {
		return nil, fmt.Errorf("%w: %s is healthy on %s but %v", target.ErrDeployFailed, release.Short(sha), c, err)
	}
	if prevDir != "" {
		removeQuiet(prevDir)
	}
	logf("%s is healthy on %s", release.Short(sha), c)
	return &target.Deployment{ID: fmt.Sprintf("pid %d", cs.PID), Status: "healthy"}, nil
}

// restorePrevious starts again the release a failed deploy replaced on the
// off color, so that oops rollback still has somewhere to go. It says what
// became of it, for the deploy's error.
func (t *Target) restorePrevious(ctx context.Context, prev colorState, timeout time.Duration, logf func(string, ...any)) string {
	short := release.Short(prev.Commit)
	if err := waitPortFree(ctx, prev.Port, 5*time.Second); err != nil {
		return fmt.Sprintf("%s could not be restarted on %s: %v", short, prev.Color, err)
	}
	prev.Error = ""
	if err := t.startProc(ctx, &prev); err != nil {
		return fmt.Sprintf("%s could not be restarted on %s: %v", short, prev.Color, err)
	}
	if err := t.saveColor(ctx, prev); err != nil {
		_ = t.stopProc(ctx, prev)
		return fmt.Sprintf("%s could not be restarted on %s: %v", short, prev.Color, err)
	}
	logf("restarting %s on %s (pid %d) so that rollback still works", short, prev.Color, prev.PID)
	if err := t.waitHealthy(ctx, prev, timeout, logf); err != nil {
		return fmt.Sprintf("%s was restarted on %s but is not healthy: %v", short, prev.Color, err)
	}
	if prev.Installing {
		if err := t.markVerified(ctx, prev); err != nil {
			return fmt.Sprintf("%s was restarted on %s and is healthy, but %v", short, prev.Color, err)
		}
	}
	return fmt.Sprintf("%s was restarted on %s and is healthy: oops rollback still goes there", short, prev.Color)
}

// fetchAndUnpack copies the artifact next to the release directories and
// unpacks it into a fresh temporary directory, which it returns.
func (t *Target) fetchAndUnpack(ctx context.Context, rel release.Release, root string, c release.Color) (string, error) {
	rc, err := t.opts.Open(ctx, rel)
	if err != nil {
		return "", fmt.Errorf("open artifact: %w", err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(root, ".artifact-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	var body io.Reader = rc
	var v *verifier
	if verified(rel) {
		v = newVerifier(rel, rc)
		body = v
	}
	_, err = io.Copy(f, body)
	if v != nil {
		err = v.check(err)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, target.ErrIntegrity) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("fetch artifact: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".unpack-"+string(c)+"-")
	if err != nil {
		return "", err
	}
	if err := unpack(f.Name(), tmp, archive.Options{Limits: t.opts.Archive}); err != nil {
		removeQuiet(tmp)
		return "", fmt.Errorf("unpack: %w", err)
	}
	return tmp, nil
}

// stopColor drains color c in the proxy (if it runs) and stops its process,
// recording that nothing runs there any more.
func (t *Target) stopColor(ctx context.Context, old colorState, proxyUp bool, logf func(string, ...any)) error {
	if !t.procs.alive(old) {
		return nil
	}
	c := old.Color
	stopping := old
	stopping.Status = procStopping
	if err := t.saveColor(ctx, stopping); err != nil {
		return err
	}
	logf("stopping %s (pid %d, commit %s)", c, old.PID, release.Short(old.Commit))
	if proxyUp {
		cut, err := t.admin.drain(ctx, c)
		switch {
		case errors.Is(err, errConflict):
			return fmt.Errorf("refusing to stop %s: %v", c, err)
		case err != nil && !errors.Is(err, errProxyDown):
			return fmt.Errorf("drain %s: %w", c, err)
		case cut > 0:
			logf("drain timeout: cut %d request(s) still in flight on %s", cut, c)
		}
	}
	if err := t.stopProc(ctx, old); err != nil {
		return err
	}
	stopped := old
	stopped.Status, stopped.PID, stopped.ProcStart, stopped.Commit = procStopped, 0, "", ""
	return t.saveColor(ctx, stopped)
}

// waitHealthy polls cs's health check until it passes, the process exits,
// or timeout.
func (t *Target) waitHealthy(ctx context.Context, cs colorState, timeout time.Duration, logf func(string, ...any)) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exited, exitErr := t.procs.exited(cs.PID)
	start := time.Now()
	nextNote := start.Add(5 * time.Second)
	url := healthURL(cs.Port, t.opts.HealthPath)
	logf("waiting up to %s for GET %s", timeout, url)
	var last error
	for {
		_, err := probe(wctx, t.hc, cs.Port, t.opts.HealthPath)
		if err == nil {
			return nil
		}
		// A probe cut short by the deadline says less than the one before.
		if last == nil || wctx.Err() == nil {
			last = err
		}
		if time.Now().After(nextNote) {
			logf("still waiting for %s after %s: %v", cs.Color, time.Since(start).Round(time.Second), last)
			nextNote = time.Now().Add(5 * time.Second)
		}
		select {
		case <-exited:
			return fmt.Errorf("the process exited (%v) before its health check passed", exitErr())
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("not healthy after %s: %v", timeout, last)
		case <-time.After(t.opts.PollInterval):
		}
	}
}

// Revive starts again every color whose process oops started and that is
// gone (the host rebooted, it crashed), from the same release directory
// with the same command. `oops proxy` calls it when it starts.
func (t *Target) Revive(ctx context.Context, logf func(string, ...any)) error {
	var errs []error
	for _, c := range []release.Color{release.Blue, release.Green} {
		rec, err := readColor(t.opts.StateDir, c, t.port(c))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rec.Status != procRunning || t.procs.alive(rec) {
			continue
		}
		if _, err := os.Stat(rec.ReleaseDir); err != nil {
			errs = append(errs, fmt.Errorf("restart %s: release directory: %w", c, err))
			continue
		}
		if err := waitPortFree(ctx, rec.Port, time.Second); err != nil {
			errs = append(errs, fmt.Errorf("restart %s: %w", c, err))
			continue
		}
		old := rec.PID
		if err := t.startProc(ctx, &rec); err != nil {
			errs = append(errs, fmt.Errorf("restart %s: %w", c, err))
			continue
		}
		if err := t.saveColor(ctx, rec); err != nil {
			errs = append(errs, err)
			continue
		}
		logf("restarted %s (commit %s): pid %d was gone, now pid %d", c, release.Short(rec.Commit), old, rec.PID)
	}
	return errors.Join(errs...)
}

// Stop stops the process on color c (not the live one, unless force) and
// records that nothing runs there.
func (t *Target) Stop(ctx context.Context, c release.Color, force bool) error {
	live, ps, err := t.live(ctx, false)
	if err != nil {
		return err
	}
	if c == live && !force {
		return fmt.Errorf("%w: refusing to stop %s: it is live", target.ErrInconsistent, c)
	}
	rec, err := readColor(t.opts.StateDir, c, t.port(c))
	if err != nil {
		return err
	}
	return t.stopColor(ctx, rec, ps != nil && c != live, func(string, ...any) {})
}

// startProc starts cs's process, unless this command lost its lock.
func (t *Target) startProc(ctx context.Context, cs *colorState) error {
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	return t.procs.start(cs, t.opts.Now(), target.ChildEnv(ctx))
}

// stopProc stops cs's process, unless this command lost its lock: the
// process may be the one a newer holder relies on.
func (t *Target) stopProc(ctx context.Context, cs colorState) error {
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	return t.procs.stop(cs, t.opts.StopGrace)
}
