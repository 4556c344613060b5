package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/oops-deploy/oops/store"
)

// Reading around bookkeeping that cannot be read (issue 10): nothing but
// the target may block oops rollback, so corrupt or unreadable marks,
// index, metadata and events are warned about once per command, naming
// the object and oops fsck, and the command goes on with what it can read.

// historyForMarks is how many of the newest events BAD marks are derived
// from when marks.json cannot be read: one listing and as many reads,
// concurrently; a release rolled back from longer ago than that is not
// caught until oops fsck --repair rebuilds the marks from all of history.
const historyForMarks = 200

// WarnCorrupt says once per command and object that ce cannot be read and
// what oops does instead.
func (r *Runner) WarnCorrupt(ce *store.CorruptError, instead string) {
	if r.warned[ce.Key] {
		return
	}
	r.warned[ce.Key] = true
	where := ""
	if st, err := r.d.Store(context.Background()); err == nil {
		where = " in " + st.String()
	}
	fix := "run: oops fsck --repair"
	if c, err := r.d.Config(); err == nil && strings.HasPrefix(ce.Key, store.EventsPrefix(c.ApplicationName)) {
		fix = "see: oops fsck" // an event is never rewritten
	}
	r.warnf("warning: %s%s is unreadable (%v): %s; %s", ce.Key, where, ce.Err, instead, fix)
}

// WarnMarks reports marks that could not be written: once, when they are
// corrupt (the reader said so already).
func (r *Runner) WarnMarks(err error) {
	var ce *store.CorruptError
	if errors.As(err, &ce) {
		r.WarnCorrupt(ce, "release marks not updated (the event is in history)")
		return
	}
	r.warnf("could not update release marks: %v", err)
}

// Marks returns the application's release marks, reading around what
// cannot be read: marks.json that cannot be decoded is replaced by marks
// derived from the newest events; a store that cannot be reached (rollback
// --no-lock) by the events this machine spooled. Each degradation is a
// warning, never an error: a rollback must not wait for bookkeeping.
func (r *Runner) Marks(ctx context.Context, st store.Store, app string) store.Marks {
	if r.storeDown != nil {
		r.WarnOnce("marks-down", "warning: cannot check the release marks in %s (it cannot be reached): checking only the events this machine spooled", st)
		return store.MarksFromEvents(r.Spooled(st, app))
	}
	m, err := store.LoadMarks(ctx, st, app)
	return r.marksRead(ctx, st, app, m, err)
}

// marksRead is Marks for marks already read (m, err from LoadMarks).
func (r *Runner) marksRead(ctx context.Context, st store.Store, app string, m store.Marks, err error) store.Marks {
	if err == nil {
		return m
	}
	var ce *store.CorruptError
	if !errors.As(err, &ce) {
		r.WarnOnce("marks-unreadable", "warning: cannot read the release marks, so releases marked BAD are not known: %v", err)
		return store.Marks{}
	}
	r.WarnCorrupt(ce, fmt.Sprintf("BAD marks are taken from the last %d events", historyForMarks))
	events, err := store.ListEvents(ctx, st, app, store.EventQuery{
		Limit:     historyForMarks,
		OnCorrupt: func(ce *store.CorruptError) { r.WarnCorrupt(ce, "left out") },
	})
	if err != nil {
		r.WarnOnce("marks-unreadable", "warning: cannot read history either, so releases marked BAD are not known: %v", err)
		return store.Marks{}
	}
	return store.MarksFromEvents(events)
}

// WarnOnce prints a warning the first time id is seen in this command.
func (r *Runner) WarnOnce(id, format string, args ...any) {
	if r.warned[id] {
		return
	}
	r.warned[id] = true
	r.warnf(format, args...)
}
