// Package workflow holds what oops does, one function per workflow: the
// locked and recorded change, the switch, deploy, rollback, repair, the
// hook protocol, release status and identity. It uses the store, the
// target and release through their interfaces, imports no CLI library and
// prints nothing: it speaks through the Reporter it is given.
//
// cmd builds a Runner per command (its dependencies in Deps) and renders
// what the workflows return.
package workflow

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/oops-deploy/oops/analysis"
	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// LockTokenEnv reaches everything a mutating command starts (hooks,
// deploy scripts): an oops started with the token of the current lock runs
// under that lock instead of waiting for it.
const LockTokenEnv = "OOPS_LOCK_TOKEN"

// Reporter is how a workflow speaks to the operator while it runs.
type Reporter interface {
	// Progressf is a step under way ("switching to green ...").
	Progressf(format string, args ...any)
	// Warnf is a diagnostic: something degraded, the command goes on.
	Warnf(format string, args ...any)
}

// Deps are what workflows use. cmd's Factory builds them; every field is
// required unless it says otherwise.
type Deps struct {
	Config func() (*config.Config, error)
	// Store is the application's store, its writes fenced by the lock a
	// context carries; RawStore is the same store unfenced, for the lock
	// itself (its heartbeats are what the fence asks).
	Store, RawStore func(context.Context) (store.Store, error)
	// Target opens the traffic target .oopsrc names; Deployer what installs
	// a release on a color (CodeDeploy, or the target itself).
	Target   func(context.Context) (target.Target, error)
	Deployer func(context.Context) (target.Deployer, error)
	// Deployments reads CodeDeploy deployments, for the hook protocol.
	Deployments func(context.Context) (DeploymentReader, error)
	// Index opens the application's release index; Resolve turns a
	// revision (SHA, tag, branch, HEAD~N) into a full commit SHA.
	Index   func(context.Context) (*store.Index, error)
	Resolve func(ctx context.Context, rev string) (string, error)
	// DeployTarget is the target of a deploy: one that can split traffic
	// when canary (a percent) is above 0.
	DeployTarget func(ctx context.Context, canary int) (target.Target, error)
	// UsesCodeDeploy: releases reach the instances through CodeDeploy.
	UsesCodeDeploy func() bool
	// Caller is the AWS caller ARN, "" when it cannot tell; asked only when
	// the store or the target is on AWS. Nil: never on AWS.
	Caller func(context.Context) string
	// Credentials says whom the AWS credentials belong to ("ARN in
	// region"), or why they cannot be used: doctor asks.
	Credentials func(context.Context) (string, error)
	// Leftovers are the places beside the store where fsck looks for what
	// interrupted deploys left (the local target's unpack directory); nil:
	// none.
	Leftovers func() []store.LeftoverCleaner
	// Who is the OS user and host name.
	Who     func() (user, host string)
	WorkDir func() (string, error)
	Now     func() time.Time
	// Getenv reads the environment: the parent's lock token, git's config
	// paths, the spool's state directory.
	Getenv func(string) string
	// LockWait is how long to wait for another holder's lock (--lock-wait).
	LockWait func() time.Duration
	Report   Reporter
	// Hooks runs .oopsrc's hooks; nil: as processes (ExecHooks).
	Hooks HookRunner
	// HTTP sends the webhook notifications; nil: a client of its own.
	HTTP *http.Client
	// SNS is an SNS client for a topic's region, for the sns: notify
	// destinations; nil: those fail, with a warning.
	SNS func(ctx context.Context, region string) (SNSPublisher, error)
	// CloudWatch is a CloudWatch client, for the bake's alarms; nil: a
	// bake with alarms is refused.
	CloudWatch func(ctx context.Context) (analysis.CloudWatchAPI, error)
}

// Runner runs workflows for one command. It keeps what that command learns
// once (who runs it, what it warned about, a store found down), so it is
// made per command, never shared.
type Runner struct {
	d Deps

	ident *Identity
	// warned holds the objects and problems already warned about, so a
	// command says each once.
	warned map[string]bool
	// storeDown is why the store cannot be reached, once rollback --no-lock
	// has found so: readers of bookkeeping skip it.
	storeDown error
}

// New returns a Runner for one command.
func New(d Deps) *Runner { return &Runner{d: d, warned: map[string]bool{}} }

// StoreDown is why the store cannot be reached, when a rollback --no-lock
// found so (nil otherwise): readers of bookkeeping skip the store.
func (r *Runner) StoreDown() error { return r.storeDown }

func (r *Runner) warnf(format string, args ...any) { r.d.Report.Warnf(format, args...) }

// UsageError marks bad input (flags, arguments, .oopsrc): the CLI exits 2
// and history records the change as refused. It does not unwrap: what it
// wraps (a parser's error and its hint) is said in its message only.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

// Usagef is a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}
