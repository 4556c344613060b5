package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/workflow"
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
	c.AddCommand(newLockStatusCmd(f, nil), newLockReleaseCmd(f, nil))
	return c
}

// LockStatusOptions are what `oops lock status` runs with: flags and dependencies.
type LockStatusOptions struct {
	IO     *IOStreams
	Now    func() time.Time
	Runner func() *workflow.Runner

	JSON   bool
	Export iostreams.Exporter // --jq, --template
}

// newLockStatusCmd builds `oops lock status`; runF replaces the run in
// flag tests (nil: lockStatusRun).
func newLockStatusCmd(f *Factory, runF func(context.Context, *LockStatusOptions) error) *cobra.Command {
	opts := &LockStatusOptions{IO: f.IO, Now: f.Now, Runner: f.Runner}
	c := &cobra.Command{
		Use:     "status",
		Short:   "Say who holds the lock, since when and for what",
		Example: "  oops lock status\n  oops lock status --json",
		Args:    noArgs,
	}
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	return runCmd(c, opts, runF, lockStatusRun)
}

func lockStatusRun(ctx context.Context, opts *LockStatusOptions) error {
	out, err := opts.Runner().LockStatus(ctx)
	if err != nil {
		return err
	}
	info := out.Lock
	if opts.JSON {
		return opts.Export.Write(opts.IO.Out, out, opts.Now)
	}
	if !out.Locked {
		fmt.Fprintf(opts.IO.Out, "%s is not locked\n", out.App)
		return nil
	}
	now := opts.Now()
	fmt.Fprintf(opts.IO.Out, "%s is locked by %s\n", out.App, info.Describe())
	fmt.Fprintf(opts.IO.Out, "  command:   %s\n", info.Command)
	fmt.Fprintf(opts.IO.Out, "  since:     %s (%s)\n", info.Started.Local().Format("2006-01-02 15:04:05"), iostreams.RelTime(now, info.Started))
	fmt.Fprintf(opts.IO.Out, "  heartbeat: %s ago (lock-ttl %s)\n", now.Sub(info.Heartbeat).Round(time.Second), info.TTL())
	if info.Generation > 0 {
		fmt.Fprintf(opts.IO.Out, "  generation: %d (a holder with a lower one is fenced out)\n", info.Generation)
	}
	if out.Stale {
		fmt.Fprintln(opts.IO.Out, "  stale:     the holder stopped heartbeating; the next command takes the lock over")
	}
	return nil
}

// LockReleaseOptions are what `oops lock release` runs with: flags and dependencies.
type LockReleaseOptions struct {
	IO      *IOStreams
	Release func(context.Context, workflow.ReleaseLockRequest) (*workflow.ReleaseLockOutcome, error)
	Confirm func(yes bool, question string) (bool, error)

	Force  bool
	Yes    bool
	DryRun bool
	Reason string
}

// newLockReleaseCmd builds `oops lock release`; runF replaces the run in
// flag tests (nil: lockReleaseRun).
func newLockReleaseCmd(f *Factory, runF func(context.Context, *LockReleaseOptions) error) *cobra.Command {
	opts := &LockReleaseOptions{
		IO: f.IO, Confirm: f.confirm,
		Release: func(ctx context.Context, req workflow.ReleaseLockRequest) (*workflow.ReleaseLockOutcome, error) {
			return f.Runner().ReleaseLock(ctx, req)
		},
	}
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
	}
	c.Flags().BoolVar(&opts.Force, "force", false, "remove the lock even if its holder looks alive")
	c.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "say what would be removed, change nothing")
	c.Flags().StringVarP(&opts.Reason, "message", "m", "", "why, recorded in history")
	return runCmd(c, opts, runF, lockReleaseRun)
}

func lockReleaseRun(ctx context.Context, opts *LockReleaseOptions) error {
	out, err := opts.Release(ctx, workflow.ReleaseLockRequest{Force: opts.Force, DryRun: opts.DryRun, Reason: opts.Reason,
		Confirm: func(o *workflow.ReleaseLockOutcome) (bool, error) {
			return opts.Confirm(opts.Yes, fmt.Sprintf("Remove the lock of %s held by %s (%q)?", o.App, o.Holder.Describe(), o.Holder.Command))
		},
		// Said as soon as it is done: trouble recording it comes after.
		Released: func(o *workflow.ReleaseLockOutcome) {
			fmt.Fprintf(opts.IO.ErrOut, "released the lock of %s held by %s\n", o.App, o.Holder.Describe())
		}})
	switch {
	case err != nil:
		return err
	case !out.Locked:
		fmt.Fprintf(opts.IO.ErrOut, "%s is not locked\n", out.App)
	case opts.DryRun:
		fmt.Fprintf(opts.IO.Out, "would remove the lock of %s held by %s (%q), %s\n", out.App, out.Holder.Describe(), out.Holder.Command, out.Why)
	}
	return nil
}
