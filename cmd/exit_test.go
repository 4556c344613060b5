package cmd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// TestExitCodeOfWorkflowErrors pins the exit codes of the errors workflows
// return, wrapped as they wrap them: scripts branch on these numbers.
func TestExitCodeOfWorkflowErrors(t *testing.T) {
	t.Parallel()
	lost := fmt.Errorf("%w; stopped before acting further (%v)", &store.LockLostError{Key: "api/.lock"}, context.Canceled)
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"usage", workflow.Usagef("--no-lock: the store can be reached"), ExitUsage},
		{"usage with a hint", target.Hinted(workflow.Usagef("bad"), "see: oops --help"), ExitUsage},
		{"usage wrapped", fmt.Errorf("deploy: %w", workflow.Usagef("bad")), ExitUsage},
		{"held lock with a hint", target.Hinted(&store.LockedError{}, workflow.LockedHint(store.LockInfo{})), ExitLocked},
		{"lost lock, context cancelled", lost, ExitLocked},
		{"fenced", fmt.Errorf("switch: %w", target.ErrFenced), ExitLocked},
		{"interrupted", context.Canceled, ExitInterrupted},
		{"AWS", fmt.Errorf("modify listener: %w", &smithy.GenericAPIError{Code: "Throttling"}), ExitAWS},
		{"verify failed", fmt.Errorf("green: %w", target.ErrVerifyFailed), ExitReverted},
		{"unhealthy", target.Hinted(fmt.Errorf("refusing: %w", target.ErrUnhealthy), "fix it"), ExitUnhealthy},
		{"other", errors.New("boom"), ExitError},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}
