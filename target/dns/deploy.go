package dns

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// CommandDeployer installs a release on a color's stack by running the
// deploy-command of .oopsrc (the hook-command way of deploying onto the off
// color, beside a CodeDeploy group per color). The command gets the
// release's artifact as a local file, checked against the size and
// SHA-256 recorded at publish, and says by its exit status whether the
// install worked; oops then gates and switches as usual.
type CommandDeployer struct {
	// Command is deploy-command: the program and its arguments, run in Dir.
	Command []string
	Dir     string
	// Open reads a release's artifact from the store.
	Open func(ctx context.Context, rel release.Release) (io.ReadCloser, error)
	// Target, when set, gives the command the color's record (OOPS_RECORD).
	Target *Target
}

var _ target.Deployer = (*CommandDeployer)(nil)

// Deploy runs the command for req.Color with, in its environment,
// OOPS_COLOR, OOPS_COMMIT, OOPS_RELEASE_KEY, OOPS_RELEASE_FILE (the
// artifact, verified) and OOPS_RECORD, and every line it prints passed to
// req.Progress. A non-zero exit is target.ErrDeployFailed.
func (d *CommandDeployer) Deploy(ctx context.Context, req target.DeployRequest) (*target.Deployment, error) {
	if len(d.Command) == 0 {
		return nil, fmt.Errorf("%w: deploy-command is empty", target.ErrMisconfigured)
	}
	progress := req.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	short := release.Short(req.Release.Commit)
	tmp, err := os.MkdirTemp("", "oops-deploy-")
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", short, err)
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, path.Base(req.Release.Key))
	if err := d.fetch(ctx, req.Release, file); err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"OOPS_COLOR="+string(req.Color),
		"OOPS_COMMIT="+req.Release.Commit,
		"OOPS_RELEASE_KEY="+req.Release.Key,
		"OOPS_RELEASE_FILE="+file,
	)
	if d.Target != nil {
		if st, _ := d.Target.State(ctx); st != nil {
			env = append(env, "OOPS_RECORD="+st.Color(req.Color).Record)
		}
	}
	env = append(env, target.ChildEnv(ctx)...)
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	// It changes the off color: only while the lock is still ours.
	if err := target.CheckFence(ctx); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, d.Command[0], d.Command[1:]...)
	cmd.Dir, cmd.Env = d.Dir, env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	var last []string // the tail, for the error
	wg.Go(func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			progress("deploy-command: %s", sc.Text())
			last = append(last, sc.Text())
			if len(last) > 5 {
				last = last[1:]
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	})
	progress("running deploy-command %s for %s on %s", strings.Join(d.Command, " "), short, req.Color)
	err = cmd.Run()
	pw.Close()
	wg.Wait()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: deploy-command for %s on %s: %w", target.ErrDeployFailed, short, req.Color, context.Cause(ctx))
		}
		msg := fmt.Sprintf("%v", err)
		if len(last) > 0 {
			msg += "; its last lines: " + strings.Join(last, " | ")
		}
		return &target.Deployment{Status: "Failed"}, fmt.Errorf("%w: deploy-command for %s on %s: %s", target.ErrDeployFailed, short, req.Color, msg)
	}
	return &target.Deployment{Status: "Succeeded"}, nil
}

// fetch copies rel's artifact to file, checking it against what was
// published when the release carries a size and SHA-256.
func (d *CommandDeployer) fetch(ctx context.Context, rel release.Release, file string) error {
	rc, err := d.Open(ctx, rel)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", rel.Key, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetch %s: %w", rel.Key, err)
	}
	if rel.SHA256 == "" || rel.Bare {
		return nil // published by other CI: nothing recorded to check against
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != rel.Size || got != rel.SHA256 {
		return fmt.Errorf("%w: %s was changed in the store after publish: it has %d bytes with sha256 %s, but %d bytes with sha256 %s were published",
			target.ErrIntegrity, rel.Key, n, got, rel.Size, rel.SHA256)
	}
	return nil
}
