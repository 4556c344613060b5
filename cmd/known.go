package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/workflow"
)

// Release statuses in oops list.
const (
	statusLive = "LIVE" // takes the traffic
	statusOff  = "OFF"  // runs on the off color: a rollback to it is instant
	statusBad  = "BAD"  // was rolled back from; deploying it needs --force
)

// releaseState is what oops list says about one release beyond its
// metadata: where it runs now and what operations taught about it.
type releaseState struct {
	// Status is LIVE, OFF, BAD or "" (published, not running, not BAD).
	Status string `json:"status,omitempty"`
	// Color is the color running it, where one does.
	Color release.Color `json:"color,omitempty"`
	// Warm: it runs on the off color, so a rollback to it is instant.
	Warm bool `json:"warm,omitempty"`
	// Installing: it was put on a color but has not passed its health
	// check (its deploy is running or was killed): not warm, unverified.
	Installing bool `json:"installing,omitempty"`
	store.Mark
}

// cell is the STATUS column: "LIVE", "OFF (warm)", "BAD: <reason>".
func (s releaseState) cell() string {
	switch {
	case s.Status == statusBad && s.Color != "":
		return fmt.Sprintf("BAD (on %s): %s", s.Color, s.BadReason)
	case s.Status == statusBad:
		return "BAD: " + s.BadReason
	case s.Status == statusOff && s.Installing:
		return "OFF (installing, unverified)"
	case s.Status == statusLive && s.Installing:
		return "LIVE (unverified)"
	case s.Status == statusOff:
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

// releaseStatus marks releases LIVE, OFF or BAD, by commit, from the
// target's state and the release marks. It returns nil when there is
// nothing to say (no target and no marks): the columns are left out.
// A target that cannot be read is a warning, not a failure: the list
// itself comes from the store.
func (f *Factory) releaseStatus(ctx context.Context, rels []release.Release) (map[string]releaseState, error) {
	c, st, err := f.configStore(ctx)
	if err != nil {
		return nil, err
	}
	marks := f.Runner().Marks(ctx, st, c.ApplicationName)
	var live, off release.Color
	var liveCommit, offCommit string
	var liveInstalling, offInstalling bool
	hasTarget := c.TargetKind() != ""
	if hasTarget {
		var unsafe *unsafeStateDirError
		if t, err := f.Target(ctx); errors.As(err, &unsafe) {
			return nil, err
		} else if err != nil {
			f.warnf("cannot tell which releases run where: %v", err)
		} else if s, err := t.State(ctx); err != nil {
			f.warnf("cannot tell which releases run where: %v", workflow.FirstLine(err))
		} else {
			live, off = s.Live.Color, s.Off.Color
			liveCommit, offCommit = s.Live.Commit, s.Off.Commit
			liveInstalling, offInstalling = s.Live.Installing, s.Off.Installing
		}
	}
	if !hasTarget && len(marks) == 0 {
		return nil, nil
	}
	out := make(map[string]releaseState, len(rels))
	for _, r := range rels {
		rs := releaseState{Mark: marks[r.Commit]}
		switch r.Commit {
		case liveCommit:
			rs.Status, rs.Color, rs.Installing = statusLive, live, liveInstalling
		case offCommit:
			rs.Status, rs.Color, rs.Warm, rs.Installing = statusOff, off, !offInstalling, offInstalling
		}
		if rs.Bad && rs.Status != statusLive {
			rs.Status = statusBad
		}
		out[r.Commit] = rs
	}
	return out, nil
}
