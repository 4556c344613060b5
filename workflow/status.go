package workflow

import (
	"context"
	"errors"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

// Release statuses in oops list.
const (
	StatusLive = "LIVE" // takes the traffic
	StatusOff  = "OFF"  // runs on the off color: a rollback to it is instant
	StatusBad  = "BAD"  // was rolled back from; deploying it needs --force
)

// ReleaseState is what oops list says about one release beyond its
// metadata: where it runs now and what operations taught about it.
type ReleaseState struct {
	// Status is LIVE, OFF, BAD or "" (published, not running, not BAD).
	Status string `json:"status,omitempty"`
	// Color is the color running it, where one does.
	Color release.Color `json:"color,omitempty"`
	// Warm: it runs on the off color, so a rollback to it is instant.
	Warm bool `json:"warm,omitempty"`
	// Installing: it was put on a color but has not passed its health
	// check (its deploy is running or was killed): not warm, unverified.
	Installing bool `json:"installing,omitempty"`
	// Approval is its approval not used yet, with require-approval: asked
	// for (awaiting), or given for a deploy still to switch.
	Approval *Approval `json:"approval,omitempty"`
	store.Mark
}

// unsafeTarget is a target error no reader reads around, though it reads
// around others: the target's configuration lets others change what oops
// runs (cmd's unsafe local state directory).
type unsafeTarget interface{ Unsafe() bool }

// ReleaseStatus marks releases LIVE, OFF or BAD, by commit, from the
// target's state and the release marks. It returns nil when there is
// nothing to say (no target and no marks): the columns are left out.
// A target that cannot be read is a warning, not a failure: the list
// itself comes from the store.
func (r *Runner) ReleaseStatus(ctx context.Context, rels []release.Release) (map[string]ReleaseState, error) {
	return r.ListStatus(ctx, &store.Listing{Releases: rels})
}

// ListStatus is ReleaseStatus of a listing, with the marks it read in the
// same wave of requests as the releases (store.Index.ListWithMarks), so
// that oops list waits for no more round trips for them. A listing
// without marks (nil Marks, nil MarksErr) has them read here.
func (r *Runner) ListStatus(ctx context.Context, l *store.Listing) (map[string]ReleaseState, error) {
	rels := l.Releases
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	st, err := r.d.Store(ctx)
	if err != nil {
		return nil, err
	}
	var marks store.Marks
	if (l.Marks == nil && l.MarksErr == nil) || r.storeDown != nil {
		marks = r.Marks(ctx, st, c.ApplicationName)
	} else {
		marks = r.marksRead(ctx, st, c.ApplicationName, l.Marks, l.MarksErr)
	}
	var live, off release.Color
	var liveCommit, offCommit string
	var liveInstalling, offInstalling bool
	hasTarget := c.TargetKind() != ""
	if hasTarget {
		var unsafe unsafeTarget
		if t, err := r.d.Target(ctx); errors.As(err, &unsafe) && unsafe.Unsafe() {
			return nil, err
		} else if err != nil {
			r.warnf("cannot tell which releases run where: %v", err)
		} else if s, err := t.State(ctx); err != nil {
			r.warnf("cannot tell which releases run where: %v", FirstLine(err))
		} else {
			live, off = s.Live.Color, s.Off.Color
			liveCommit, offCommit = s.Live.Commit, s.Off.Commit
			liveInstalling, offInstalling = s.Live.Installing, s.Off.Installing
		}
	}
	approvals := map[string]*Approval{}
	if c.RequireApproval {
		all, err := r.Approvals(ctx)
		if err != nil {
			r.warnf("cannot tell which releases await approval: %v", err)
		}
		for i := range all {
			approvals[all[i].Commit] = &all[i]
		}
	}
	if !hasTarget && len(marks) == 0 && len(approvals) == 0 {
		return nil, nil
	}
	out := make(map[string]ReleaseState, len(rels))
	for _, rel := range rels {
		rs := ReleaseState{Mark: marks[rel.Commit], Approval: approvals[rel.Commit]}
		switch rel.Commit {
		case liveCommit:
			rs.Status, rs.Color, rs.Installing = StatusLive, live, liveInstalling
		case offCommit:
			rs.Status, rs.Color, rs.Warm, rs.Installing = StatusOff, off, !offInstalling, offInstalling
		}
		if rs.Bad && rs.Status != StatusLive {
			rs.Status = StatusBad
		}
		out[rel.Commit] = rs
	}
	return out, nil
}
