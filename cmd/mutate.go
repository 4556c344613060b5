package cmd

import (
	"fmt"

	"github.com/oops-deploy/oops/workflow"
)

// LockTokenEnv reaches the processes a mutating command starts: an oops
// started with it runs under the same lock (workflow.LockTokenEnv).
const LockTokenEnv = workflow.LockTokenEnv

// warnf prints a diagnostic on stderr.
func (f *Factory) warnf(format string, args ...any) {
	fmt.Fprintf(f.IO.ErrOut, "oops: "+format+"\n", args...)
}
