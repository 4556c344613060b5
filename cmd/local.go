package cmd

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target/local"
)

// localTarget opens the built-in proxy target ("target": "local") with the
// ports, command and state directory from c. Releases are read through
// index; now is its clock.
func localTarget(c *config.Config, now func() time.Time, index func(context.Context) (*store.Index, error)) (*local.Target, error) {
	drain := local.DefaultDrainTimeout
	if d := c.Values.DrainTimeout; d > 0 {
		drain = d // parsed when .oopsrc loaded
	}
	stateDir := c.StateDir
	if stateDir == "" {
		stateDir = local.DefaultStateDir
	}
	if !filepath.IsAbs(stateDir) {
		stateDir = filepath.Join(c.Dir, stateDir)
	}
	t, err := local.New(local.Options{
		App:           c.ApplicationName,
		StateDir:      stateDir,
		Listen:        c.Listen,
		PreviewListen: c.PreviewListen,
		BluePort:      c.BluePort,
		GreenPort:     c.GreenPort,
		Command:       c.Command,
		HealthPath:    c.HealthPath,
		DrainTimeout:  drain,
		// Parsed when .oopsrc loaded; 0: the proxy's defaults.
		MaxConnections: c.Values.MaxConnections,
		HeaderTimeout:  c.Values.HeaderTimeout,
		BodyTimeout:    c.Values.BodyTimeout,
		WriteTimeout:   c.Values.WriteTimeout,
		IdleTimeout:    c.Values.IdleTimeout,
		Archive:        archiveLimits(c),
		Now:            now,
		Open: func(ctx context.Context, rel release.Release) (io.ReadCloser, error) {
			idx, err := index(ctx)
			if err != nil {
				return nil, err
			}
			return idx.Open(ctx, rel)
		},
		// Parsed when .oopsrc loaded; unset: the proxy's defaults.
		TrustedProxies:  c.Values.TrustedProxies,
		UpstreamTimeout: c.Values.UpstreamTimeout,
	})
	if err != nil {
		return nil, &config.Error{Path: c.Path, Msg: err.Error(), Hint: "see the local target keys in .oopsrc.example"}
	}
	if err := local.CheckStateDir(stateDir); err != nil {
		return nil, unsafeStateDir(c, err)
	}
	return t, nil
}

// unsafeStateDir turns a state directory others could write into a config
// error (exit 2) whose hint is the command that fixes it.
func unsafeStateDir(c *config.Config, err error) error {
	var ue *local.UnsafeStateError
	if errors.As(err, &ue) {
		return &unsafeStateDirError{&config.Error{Path: c.Path, Msg: ue.Error(), Hint: ue.Hint()}}
	}
	return err
}

// unsafeStateDirError is a config error that commands which otherwise read
// around an unreadable target (oops list) refuse on too.
type unsafeStateDirError struct{ ce *config.Error }

func (e *unsafeStateDirError) Error() string { return e.ce.Error() }
func (e *unsafeStateDirError) Unwrap() error { return e.ce }
