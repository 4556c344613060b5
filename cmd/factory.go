package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"golang.org/x/term"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/awsfence"
	"github.com/oops-deploy/oops/target/codedeploy"
	"github.com/oops-deploy/oops/workflow"
)

// IOStreams are where a command reads and writes. Data goes to Out,
// progress and diagnostics to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// InTTY, OutTTY, ErrTTY tell whether each stream is a terminal.
	InTTY, OutTTY, ErrTTY bool
}

// SystemIO returns the process's standard streams.
func SystemIO() *IOStreams {
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		InTTY: isTTY(os.Stdin), OutTTY: isTTY(os.Stdout), ErrTTY: isTTY(os.Stderr),
	}
}

// Progressf writes a progress line on ErrOut.
func (s *IOStreams) Progressf(format string, args ...any) {
	fmt.Fprintf(s.ErrOut, format+"\n", args...)
}

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

	cfg    *config.Config
	store  store.Store      // opened once per command (store.go)
	runner *workflow.Runner // made once per command (Runner)
}

// NewFactory wires the real process environment.
func NewFactory(version string) *Factory {
	return &Factory{
		IO:      SystemIO(),
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

// Config finds and loads .oopsrc once.
func (f *Factory) Config() (*config.Config, error) {
	if f.cfg != nil {
		return f.cfg, nil
	}
	path := f.ConfigPath
	if path != "" && !filepath.IsAbs(path) {
		wd, err := f.Getwd()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(wd, path)
	}
	if path == "" {
		dir, err := f.WorkDir()
		if err != nil {
			return nil, err
		}
		if path, err = config.Find(dir); err != nil {
			return nil, err
		}
	}
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	f.cfg = c
	return c, nil
}

// AWSConfig loads the standard AWS chain (env, profile, SSO, IMDS) with the
// region from --region, then .oopsrc, then the environment.
func (f *Factory) AWSConfig(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	region := f.Region
	if region == "" {
		if c, err := f.Config(); err == nil {
			region = c.Region
		}
	}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, withHint(usageErrorf("no AWS region configured"),
			`set "region" in .oopsrc, pass --region, or export AWS_REGION`)
	}
	// A command that lost its lock changes nothing more through AWS.
	cfg.APIOptions = append(cfg.APIOptions, awsfence.Middleware)
	return cfg, nil
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

// Runner runs the workflows of this command, made once from the Factory's
// clients and config.
func (f *Factory) Runner() *workflow.Runner {
	if f.runner == nil {
		f.runner = workflow.New(workflow.Deps{
			Config: f.Config, Store: f.Store, RawStore: f.openStore, Target: f.Target, Deployer: f.Deployer,
			Caller: f.awsCaller, Credentials: f.credentials, Leftovers: f.leftovers, Who: f.Who, WorkDir: f.WorkDir,
			Index: f.Index, Resolve: f.ResolveRev, Deployments: deploymentsOf(f.readDeployments),
			// Late-bound: tests replace these fields, flags set LockWait.
			Now: func() time.Time { return f.Now() }, Getenv: func(k string) string { return f.Getenv(k) },
			LockWait: func() time.Duration { return f.LockWait }, Report: reporter{f},
			DeployTarget: func(ctx context.Context, canary int) (target.Target, error) {
				return f.TargetFor(ctx, deployTargetOptions(canary))
			},
			UsesCodeDeploy: func() bool { c, err := f.Config(); return err == nil && usesCodeDeploy(c) },
			SNS:            f.snsClient,
		})
	}
	return f.runner
}

// reporter prints what workflows say on the Factory's stderr (read at
// each call, as tests replace f.IO): progress as is,
// diagnostics after "oops: ".
type reporter struct{ f *Factory }

func (r reporter) Progressf(format string, args ...any) { r.f.IO.Progressf(format, args...) }
func (r reporter) Warnf(format string, args ...any)     { r.f.warnf(format, args...) }

// readDeployments opens CodeDeploy for reading what a deployment installs
// (no store: the hooks read it on the instances).
func (f *Factory) readDeployments(ctx context.Context) (*codedeploy.Deployer, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	return codeDeployer(ctx, c, f.AWSConfig, nil)
}
