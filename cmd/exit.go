package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
	"github.com/oops-deploy/oops/workflow"
)

// Exit codes. They are part of the CLI contract (documented in the README):
// scripts branch on them, so never renumber.
const (
	ExitOK           = 0
	ExitError        = 1  // anything not listed below
	ExitUsage        = 2  // bad flags, arguments or .oopsrc; a CodeDeploy group with traffic control
	ExitNotFound     = 3  // unknown or ambiguous revision, release not published
	ExitConflict     = 4  // a release exists with different bytes
	ExitLocked       = 5  // another operator holds the lock
	ExitUnhealthy    = 6  // refused: the color to switch to is unhealthy
	ExitDeployFailed = 7  // the deployment failed; traffic untouched
	ExitInconsistent = 8  // the target is half-switched or misconfigured
	ExitAWS          = 9  // AWS refused or failed (permissions, throttling, missing resource)
	ExitReverted     = 10 // switched, failed verification, switched back
	ExitAborted      = 11 // the operator answered no
	ExitBadRelease   = 12 // refused: the release is marked BAD (was rolled back from); --force overrides
	ExitIntegrity    = 13 // the artifact does not match the size and SHA-256 recorded at publish; nothing changed
	ExitAwaiting     = 14 // installed on the off color; the switch awaits someone else's oops approve
	ExitInterrupted  = 130
)

// usageError marks bad command-line input (exit 2, recorded as refused).
type usageError = workflow.UsageError

func usageErrorf(format string, args ...any) error { return workflow.Usagef(format, args...) }

// withHint attaches advice printed under the error.
func withHint(err error, hint string) error { return target.Hinted(err, hint) }

// ExitCode maps an error to the process exit code, in one place.
func ExitCode(err error) int {
	var ue usageError
	var ce *config.Error
	var nf *config.NotFoundError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.As(err, &ce), errors.As(err, &nf),
		errors.Is(err, codedeploy.ErrTrafficControl): // refused: the group's setup, with the fix
		return ExitUsage
	case errors.Is(err, store.ErrLockLost), errors.Is(err, target.ErrFenced):
		// Before Canceled: losing the lock cancels the command's context.
		return ExitLocked
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, target.ErrAborted):
		return ExitAborted
	case errors.Is(err, workflow.ErrAwaitingApproval):
		return ExitAwaiting
	case errors.Is(err, store.ErrLocked):
		return ExitLocked
	case errors.Is(err, release.ErrUnknownRevision), errors.Is(err, release.ErrAmbiguous), errors.Is(err, release.ErrNotPublished):
		return ExitNotFound
	case errors.Is(err, store.ErrImmutable):
		return ExitConflict
	case errors.Is(err, store.ErrBadRelease):
		return ExitBadRelease
	case errors.Is(err, target.ErrVerifyFailed):
		return ExitReverted
	case errors.Is(err, target.ErrUnhealthy):
		return ExitUnhealthy
	case errors.Is(err, target.ErrIntegrity):
		return ExitIntegrity
	case errors.Is(err, target.ErrDeployFailed):
		return ExitDeployFailed
	case errors.Is(err, target.ErrInconsistent), errors.Is(err, target.ErrMisconfigured):
		return ExitInconsistent
	case workflow.IsAWSError(err):
		return ExitAWS
	}
	return ExitError
}

// PrintError writes "oops: <what failed>: <why>" and any hints.
func PrintError(w io.Writer, err error) {
	msg := err.Error()
	fmt.Fprintf(w, "oops: %s\n", msg)
	var hints []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(interface{ Hint() string }); ok && h.Hint() != "" {
			hints = append(hints, h.Hint())
		}
	}
	var ce *config.Error
	if errors.As(err, &ce) && ce.Hint != "" {
		hints = append(hints, ce.Hint)
	}
	var nf *config.NotFoundError
	if errors.As(err, &nf) {
		hints = append(hints, "create one with `oops init`, pass --config FILE or -C DIR; a .oopsrc looks like:\n"+config.Sample)
	}
	for _, h := range hints {
		fmt.Fprintln(w, strings.TrimRight(h, "\n"))
	}
}
