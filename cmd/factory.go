package cmd

import (
	"os"
	osuser "os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/oops-deploy/oops/backend"
	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/workflow"
)

// IOStreams are where a command reads and writes (package iostreams).
type IOStreams = iostreams.IOStreams

// Factory holds the dependencies commands share. Tests replace fields.
type Factory struct {
	IO      *IOStreams
	Getenv  func(string) string
	Getwd   func() (string, error)
	Now     func() time.Time
	Version string

	// Global flags.
	ConfigPath string
	Dir        string
	Region     string
	// LockWait is how long a mutating command waits for another
	// operator's lock (--lock-wait); 0 fails at once.
	LockWait time.Duration

	cfg      *config.Config
	store    store.Store      // replaces the store .oopsrc names (tests)
	backends *backend.Set     // opened once per command (Backends)
	runner   *workflow.Runner // made once per command (Runner)
}

// NewFactory wires the real process environment.
func NewFactory(version string) *Factory {
	return &Factory{
		IO:      iostreams.System(),
		Getenv:  os.Getenv,
		Getwd:   os.Getwd,
		Now:     time.Now,
		Version: version,
	}
}

// WorkDir is the folder commands run in: -C DIR or the current directory.
func (f *Factory) WorkDir() (string, error) {
	wd, err := f.Getwd()
	if err != nil {
		return "", err
	}
	if f.Dir == "" {
		return wd, nil
	}
	if filepath.IsAbs(f.Dir) {
		return f.Dir, nil
	}
	return filepath.Join(wd, f.Dir), nil
}

// Config finds and loads .oopsrc once: --config (relative to the current
// directory), else the nearest .oopsrc from the work directory up.
func (f *Factory) Config() (*config.Config, error) {
	if f.cfg != nil {
		return f.cfg, nil
	}
	// An absolute --config needs no current directory: it may be gone.
	var wd string
	if !filepath.IsAbs(f.ConfigPath) {
		var err error
		if wd, err = f.Getwd(); err != nil {
			return nil, err
		}
	}
	c, err := config.Open(f.ConfigPath, wd, f.Dir)
	if err != nil {
		return nil, err
	}
	f.cfg = c
	return c, nil
}

// Who names the operator for events and locks: OS user at host.
func (f *Factory) Who() (user, host string) {
	user = f.Getenv("USER")
	if user == "" {
		user = f.Getenv("LOGNAME")
	}
	if user == "" {
		// cron, systemd and CodeDeploy hooks often run without $USER.
		if u, err := osuser.Current(); err == nil {
			user = u.Username
		}
	}
	if user == "" {
		user = "unknown"
	}
	host, _ = os.Hostname()
	return user, strings.TrimSpace(host)
}

// Backends opens the store, target and AWS clients of this command, each
// once, from .oopsrc and the global flags.
func (f *Factory) Backends() *backend.Set {
	if f.backends == nil {
		f.backends = backend.New(backend.Env{
			Config: f.Config, WorkDir: f.WorkDir, Who: f.Who, Store: f.store,
			// Late-bound: tests replace these fields, flags set Region.
			Getenv: func(k string) string { return f.Getenv(k) }, Now: func() time.Time { return f.Now() },
			Region: func() string { return f.Region }, Logf: func(format string, args ...any) { f.IO.Progressf(format, args...) },
			OnCorrupt: func(ce *store.CorruptError, instead string) { f.Runner().WarnCorrupt(ce, instead) },
		})
	}
	return f.backends
}

// Runner runs the workflows of this command on its Backends.
func (f *Factory) Runner() *workflow.Runner {
	if f.runner == nil {
		d := f.Backends().Deps()
		d.LockWait = func() time.Duration { return f.LockWait } // set by --lock-wait
		d.Report = reporter{f}
		f.runner = workflow.New(d)
	}
	return f.runner
}

// reporter prints what workflows say on the Factory's stderr (read at
// each call, as tests replace f.IO): progress as is,
// diagnostics after "oops: ".
type reporter struct{ f *Factory }

func (r reporter) Progressf(format string, args ...any) { r.f.IO.Progressf(format, args...) }
func (r reporter) Warnf(format string, args ...any)     { r.f.IO.Warnf(format, args...) }
