package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

func newLockCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "lock",
		Short: "Show or release the application's lock",
		Long: `Every command that changes traffic or the index takes the application's
lock, so two operators cannot change it at once. The lock records who holds
it, where, since when and for what, and a heartbeat: a holder that died
loses it lock-ttl (default 1m) after its last heartbeat.`,
		Example: `  oops lock status
  oops lock release            # a lock whose holder is gone
  oops deploy v2 --lock-wait 5m  # wait for the holder instead of failing`,
		Args: noArgs,
	}
	c.AddCommand(newLockStatusCmd(f), newLockReleaseCmd(f))
	return c
}

// lockStatus is `oops lock status --json`.
type lockStatus struct {
	App    string          `json:"application"`
	Locked bool            `json:"locked"`
	Stale  bool            `json:"stale"`
	Lock   *store.LockInfo `json:"lock,omitempty"`
}

func newLockStatusCmd(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "status",
		Short:   "Say who holds the lock, since when and for what",
		Example: "  oops lock status\n  oops lock status --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLockStatus(cmd.Context(), f, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func runLockStatus(ctx context.Context, f *Factory, asJSON bool) error {
	c, st, err := f.configStore(ctx)
	if err != nil {
		return err
	}
	out := lockStatus{App: c.ApplicationName}
	info, _, err := store.ReadLock(ctx, st, c.ApplicationName)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		out.Locked, out.Lock, out.Stale = true, &info, info.Stale(time.Now())
	}
	if asJSON {
		return writeJSON(f.IO.Out, out)
	}
	if !out.Locked {
		fmt.Fprintf(f.IO.Out, "%s is not locked\n", c.ApplicationName)
		return nil
	}
	now := time.Now()
	fmt.Fprintf(f.IO.Out, "%s is locked by %s\n", c.ApplicationName, info.Describe())
	fmt.Fprintf(f.IO.Out, "  command:   %s\n", info.Command)
	fmt.Fprintf(f.IO.Out, "  since:     %s (%s)\n", info.Started.Local().Format("2006-01-02 15:04:05"), relTime(now, info.Started))
	fmt.Fprintf(f.IO.Out, "  heartbeat: %s ago (lock-ttl %s)\n", now.Sub(info.Heartbeat).Round(time.Second), info.TTL())
	if info.Generation > 0 {
		fmt.Fprintf(f.IO.Out, "  generation: %d (a holder with a lower one is fenced out)\n", info.Generation)
	}
	if out.Stale {
		fmt.Fprintln(f.IO.Out, "  stale:     the holder stopped heartbeating; the next command takes the lock over")
	}
	return nil
}

type lockReleaseOptions struct {
	Force  bool
	Yes    bool
	DryRun bool
	Reason string
}

func newLockReleaseCmd(f *Factory) *cobra.Command {
	var opts lockReleaseOptions
	c := &cobra.Command{
		Use:   "release",
		Short: "Remove the lock left by a holder that is gone",
		Long: `release removes the application's lock when its holder is gone: its heartbeat
is older than its lock-ttl, or it ran on this host and its process has exited.
A lock held by a live holder is only removed with --force, which you should
use only when you know that holder is not changing anything.`,
		Example: `  oops lock release
  oops lock release --force --yes -m "ci runner killed mid-deploy"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLockRelease(cmd.Context(), f, opts)
		},
	}
	c.Flags().BoolVar(&opts.Force, "force", false, "remove the lock even if its holder looks alive")
	c.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "say what would be removed, change nothing")
	c.Flags().StringVarP(&opts.Reason, "message", "m", "", "why, recorded in history")
	return c
}

func runLockRelease(ctx context.Context, f *Factory, opts lockReleaseOptions) error {
	c, st, err := f.configStore(ctx)
	if err != nil {
		return err
	}
	app := c.ApplicationName
	info, etag, err := store.ReadLock(ctx, st, app)
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(f.IO.ErrOut, "%s is not locked\n", app)
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	gone, why := f.Runner().HolderGone(info, now)
	if !gone && !opts.Force {
		return withHint(&store.LockedError{Info: info, Now: now},
			"if you are sure that holder is not changing anything: oops lock release --force")
	}
	if !gone {
		why = "forced"
	}
	if opts.DryRun {
		fmt.Fprintf(f.IO.Out, "would remove the lock of %s held by %s (%q), %s\n", app, info.Describe(), info.Command, why)
		return nil
	}
	ok, err := f.confirm(opts.Yes, fmt.Sprintf("Remove the lock of %s held by %s (%q)?", app, info.Describe(), info.Command))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("release lock: %w", target.ErrAborted)
	}
	reason := opts.Reason
	if reason == "" {
		reason = fmt.Sprintf("released the lock of %s (%q), %s", info.Describe(), info.Command, why)
	}
	return f.mutate(ctx, mutateOptions{Action: release.ActionLock, Command: "oops lock release", Reason: reason, NoLock: true},
		func(ctx context.Context, _ *release.Event) error {
			// Only the version we looked at: a lock taken since is left alone.
			if err := store.ForceReleaseLock(ctx, st, app, etag); err != nil {
				if errors.Is(err, store.ErrPrecondition) {
					return fmt.Errorf("release lock of %s: %w: it changed hands while we looked; run oops lock status", app, store.ErrLocked)
				}
				return err
			}
			fmt.Fprintf(f.IO.ErrOut, "released the lock of %s held by %s\n", app, info.Describe())
			return nil
		})
}
