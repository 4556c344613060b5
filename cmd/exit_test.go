package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/config"
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
		{"awaiting approval", target.Hinted(fmt.Errorf("ccccccc is installed on green: %w", workflow.ErrAwaitingApproval), "oops approve ccccccc"), ExitAwaiting},
		{"other", errors.New("boom"), ExitError},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestPrintErrorUsageKeepsItsOwnHints pins that a usage error hides what it
// wraps: oops init prints its own hint for a .oopsrc it would write that
// does not load, not the parser's sample .oopsrc as well (as before 0fec3af).
func TestPrintErrorUsageKeepsItsOwnHints(t *testing.T) {
	t.Parallel()
	inner := &config.Error{Path: ".oopsrc:3:3", Msg: `"store" "ftp://x": only s3:// URLs and directory paths are supported`, Hint: "example:\n{}"}
	err := withHint(usageErrorf("init: %w", inner), "pick another --app or --store")
	var b bytes.Buffer
	PrintError(&b, err)
	want := "oops: init: .oopsrc:3:3: \"store\" \"ftp://x\": only s3:// URLs and directory paths are supported\npick another --app or --store\n"
	if b.String() != want {
		t.Errorf("PrintError printed\n%s\nwant\n%s", b.String(), want)
	}
	if got := ExitCode(err); got != ExitUsage {
		t.Errorf("ExitCode = %d, want %d", got, ExitUsage)
	}
}
