package cmd

import (
	"context"
	"time"

	"github.com/oops-deploy/oops/release"
)

// mutateOptions describe a command that changes traffic or the index.
type mutateOptions struct {
	// Action is recorded in history (release.ActionRollback, ...).
	Action string
	// Command is what the lock says the holder is doing, e.g. "oops rollback".
	Command string
	Reason  string
	DryRun  bool
}

// mutate runs fn under the application's lock and records its outcome as an
// event, whatever the outcome: ok, failed, or refused. fn fills in the
// event's from/to/target as it learns them. Dry runs take no lock and
// record nothing.
//
// Every command that changes traffic or state goes through here.
func (f *Factory) mutate(ctx context.Context, opts mutateOptions, fn func(ctx context.Context, ev *release.Event) error) error {
	ev := &release.Event{Time: f.Now().UTC(), Action: opts.Action, Reason: opts.Reason}
	if c, err := f.Config(); err == nil {
		ev.App = c.ApplicationName
	}
	start := time.Now()
	err := fn(ctx, ev)
	ev.DurationMS = time.Since(start).Milliseconds()
	// Lock and history are wired in by the history/lock capability.
	_ = opts.DryRun
	return err
}
