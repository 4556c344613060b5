package cmd

import (
	"context"
	"fmt"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// LockTokenEnv reaches the processes a mutating command starts: an oops
// started with it runs under the same lock (workflow.LockTokenEnv).
const LockTokenEnv = workflow.LockTokenEnv

// mutateOptions describe a command that changes traffic or the index.
type mutateOptions = workflow.Change

// mutate runs fn under the application's lock and records its outcome
// (workflow.Runner.Locked).
func (f *Factory) mutate(ctx context.Context, opts mutateOptions, fn func(ctx context.Context, ev *release.Event) error) error {
	return f.Runner().Locked(ctx, opts, fn)
}

// warnf prints a diagnostic on stderr.
func (f *Factory) warnf(format string, args ...any) {
	fmt.Fprintf(f.IO.ErrOut, "oops: "+format+"\n", args...)
}
