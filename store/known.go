package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/oops-deploy/oops/release"
)

// Mark is what operations taught oops about one release: whether it was
// rolled back from (BAD, and why), and when and by whom it was last
// deployed. It summarises the events so that `oops list` reads one object
// instead of the whole history.
type Mark struct {
	Bad       bool      `json:"bad,omitempty"`
	BadReason string    `json:"bad_reason,omitempty"`
	BadAt     time.Time `json:"bad_at,omitzero"`
	BadBy     string    `json:"bad_by,omitempty"`

	// Deployed* say when a deploy last put the release on a color.
	DeployedAt    time.Time     `json:"deployed_at,omitzero"`
	DeployedBy    string        `json:"deployed_by,omitempty"`
	DeployedColor release.Color `json:"deployed_color,omitempty"`
	// Live* say when any switch (deploy, rollback, switch) last sent
	// traffic to it.
	LiveAt time.Time `json:"live_at,omitzero"`
	LiveBy string    `json:"live_by,omitempty"`
}

// ErrBadRelease: the release was rolled back from; deploying it again
// needs --force.
var ErrBadRelease = errors.New("release is marked BAD")

// BadReleaseError says which release is BAD and why.
type BadReleaseError struct {
	Commit string
	Mark   Mark
}

func (e *BadReleaseError) Error() string {
	msg := fmt.Sprintf("release %s is marked BAD: %s", release.Short(e.Commit), e.Mark.BadReason)
	if e.Mark.BadBy != "" {
		msg += " (rolled back by " + e.Mark.BadBy
		if !e.Mark.BadAt.IsZero() {
			msg += " at " + e.Mark.BadAt.Local().Format("2006-01-02 15:04")
		}
		msg += ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrBadRelease) true.
func (e *BadReleaseError) Unwrap() error { return ErrBadRelease }

// Marks are an application's marks by full commit SHA.
type Marks map[string]Mark

// MarksKey is where an application's marks live.
func MarksKey(app string) string { return app + "/" + MetaDir + "/marks.json" }

// LoadMarks reads an application's marks; none yet is an empty set.
func LoadMarks(ctx context.Context, s Store, app string) (Marks, error) {
	m, _, err := loadMarks(ctx, s, app)
	return m, err
}

func loadMarks(ctx context.Context, s Store, app string) (Marks, string, error) {
	m := Marks{}
	rc, obj, err := s.Get(ctx, MarksKey(app))
	if errors.Is(err, ErrNotFound) {
		return m, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read release marks in %s: %w", s, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", fmt.Errorf("read release marks in %s: %w", s, err)
	}
	var file marksFile
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, obj.ETag, fmt.Errorf("read release marks in %s: %w", s, &CorruptError{Key: MarksKey(app), Err: err})
	}
	if file.Releases != nil {
		m = file.Releases
	}
	return m, obj.ETag, nil
}

// marksFile is the content of marks.json.
type marksFile struct {
	Releases Marks `json:"releases"`
}

func encodeMarks(m Marks) ([]byte, error) {
	return json.MarshalIndent(marksFile{m}, "", "  ")
}

// UpdateMarks applies fn to an application's marks and writes them back
// with a compare-and-swap, retrying when another writer got there first,
// so no update is lost even outside the lock. Marks that fn leaves as
// they were are not written (nor created when there were none).
//
// Marks that cannot be decoded are left as they are (the error wraps a
// *CorruptError): writing only fn's change over them would silently forget
// every other BAD mark. oops fsck --repair rebuilds them from history,
// which holds every event, this one included.
func UpdateMarks(ctx context.Context, s Store, app string, fn func(Marks)) error {
	for {
		m, etag, err := loadMarks(ctx, s, app)
		if err != nil {
			return err
		}
		// Compared re-encoded, not with the bytes read: marks written by
		// another version may differ in spacing only.
		before, err := encodeMarks(m)
		if err != nil {
			return fmt.Errorf("write release marks: %w", err)
		}
		fn(m)
		body, err := encodeMarks(m)
		if err != nil {
			return fmt.Errorf("write release marks: %w", err)
		}
		if bytes.Equal(body, before) {
			return nil
		}
		if etag == "" {
			_, err = s.Create(ctx, MarksKey(app), bytes.NewReader(body), int64(len(body)), nil)
		} else {
			_, err = s.Replace(ctx, MarksKey(app), body, etag)
		}
		if errors.Is(err, ErrExists) || errors.Is(err, ErrPrecondition) || errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write release marks in %s: %w", s, err)
		}
		return nil
	}
}

// ApplyEvent updates marks from a successful event: a rollback marks the
// release it left BAD (with the reason given, -m); a deploy or rollback
// that put a BAD release live (both need --force for that) clears its
// mark: the operator vouched for it. Anything that sent traffic to a
// release records when and by whom; a deploy also where it was installed.
func (m Marks) ApplyEvent(ev *release.Event) {
	if ev.Result != release.ResultOK {
		return
	}
	from, to := ev.From.Commit, ev.To.Commit
	// A rollback that switched nothing (an interrupted switch found
	// repaired since: no To side) leaves no release behind.
	switched := ev.To.Color != "" || to != ""
	if ev.Action == release.ActionRollback && switched && from != "" && from != to {
		mk := m[from]
		mk.Bad, mk.BadAt, mk.BadBy = true, ev.Time, ev.Who
		mk.BadReason = ev.Reason
		if mk.BadReason == "" {
			mk.BadReason = "rolled back from"
		}
		m[from] = mk
	}
	if to == "" {
		return
	}
	mk := m[to]
	switch ev.Action {
	case release.ActionDeploy:
		mk.DeployedAt, mk.DeployedBy, mk.DeployedColor = ev.Time, ev.Who, ev.To.Color
		if ev.NoSwitch {
			// Installed on the off color only: warm, not live, and no
			// proof yet that it is good.
			m[to] = mk
			return
		}
	case release.ActionRollback, release.ActionSwitch, release.ActionPromote:
	default:
		return
	}
	if ev.Action == release.ActionDeploy || ev.Action == release.ActionRollback {
		mk.Bad, mk.BadReason, mk.BadAt, mk.BadBy = false, "", time.Time{}, ""
	}
	mk.LiveAt, mk.LiveBy = ev.Time, ev.Who
	m[to] = mk
}

// ChangesMarks reports whether a successful ev can change any mark: when
// it cannot (a publish), recording it need not read the marks at all.
func ChangesMarks(ev *release.Event) bool {
	m := Marks{}
	m.ApplyEvent(ev)
	return len(m) > 0
}

// CheckBad returns a *BadReleaseError when commit is marked BAD.
func (m Marks) CheckBad(commit string) error {
	if mk, ok := m[commit]; ok && mk.Bad {
		return &BadReleaseError{Commit: commit, Mark: mk}
	}
	return nil
}

// MarksFromEvents derives marks from events given newest first (as
// ListEvents returns them), replaying them oldest first: what the marks
// would say if only these events had happened. It is how BAD marks are
// still honoured when marks.json cannot be read.
func MarksFromEvents(events []release.Event) Marks {
	m := Marks{}
	for i := len(events) - 1; i >= 0; i-- {
		m.ApplyEvent(&events[i])
	}
	return m
}

// ApplyLateEvent is ApplyEvent for an event recorded after events that
// happened later (one kept in a local spool while the store could not be
// reached): it changes nothing when a mark of either release was set after
// the event happened, since that later operation knew better.
func (m Marks) ApplyLateEvent(ev *release.Event) {
	later := func(sha string) bool {
		if sha == "" {
			return false
		}
		mk := m[sha]
		return mk.LiveAt.After(ev.Time) || mk.BadAt.After(ev.Time) || mk.DeployedAt.After(ev.Time)
	}
	if later(ev.From.Commit) || later(ev.To.Commit) {
		return
	}
	m.ApplyEvent(ev)
}
