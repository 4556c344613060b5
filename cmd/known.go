package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/workflow"
)

// releaseState is the workflow's ReleaseState, with the cells oops list
// renders it in.
type releaseState workflow.ReleaseState

// releaseStatusOf is the workflow's release status in the type oops list
// renders; runner is asked when the list runs, after the flags are parsed.
func releaseStatusOf(runner func() *workflow.Runner) func(context.Context, []release.Release) (map[string]releaseState, error) {
	return func(ctx context.Context, rels []release.Release) (map[string]releaseState, error) {
		status, err := runner().ReleaseStatus(ctx, rels)
		if err != nil || status == nil {
			return nil, err // nil: nothing to say, the columns are left out
		}
		out := make(map[string]releaseState, len(status))
		for commit, s := range status {
			out[commit] = releaseState(s)
		}
		return out, nil
	}
}

// Unsafe marks the unsafe state directory as an error oops list refuses on
// (workflow.ReleaseStatus reads around other target errors).
func (e *unsafeStateDirError) Unsafe() bool { return true }

// cell is the STATUS column: "LIVE", "OFF (warm)", "BAD: <reason>", and
// with require-approval ", AWAITING APPROVAL" or ", APPROVED by <who>"
// after it.
func (s releaseState) cell() string {
	c, a := s.statusCell(), s.Approval
	switch {
	case a == nil:
		return c
	case a.Approved():
		return strings.TrimPrefix(c+", APPROVED by "+a.ApprovedBy, "-, ")
	}
	return strings.TrimPrefix(c+", AWAITING APPROVAL (deployed by "+a.RequestedBy+")", "-, ")
}

func (s releaseState) statusCell() string {
	switch {
	case s.Status == workflow.StatusBad && s.Color != "":
		return fmt.Sprintf("BAD (on %s): %s", s.Color, s.BadReason)
	case s.Status == workflow.StatusBad:
		return "BAD: " + s.BadReason
	case s.Status == workflow.StatusOff && s.Installing:
		return "OFF (installing, unverified)"
	case s.Status == workflow.StatusLive && s.Installing:
		return "LIVE (unverified)"
	case s.Status == workflow.StatusOff:
		return "OFF (warm)"
	case s.Status == "":
		return "-"
	}
	return s.Status
}

// deployedCell is the DEPLOYED column: when the release last went live
// and who did it.
func (s releaseState) deployedCell(now time.Time, tty bool) string {
	if s.LiveAt.IsZero() {
		return "-"
	}
	when := s.LiveAt.UTC().Format(time.RFC3339)
	if tty {
		when = relTime(now, s.LiveAt)
	}
	if s.LiveBy == "" {
		return when
	}
	return when + " by " + s.LiveBy
}
