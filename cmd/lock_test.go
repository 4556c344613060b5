package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
)

// lockCmd puts sub under `lock`, as NewRoot does, so args read as typed.
func lockCmd(sub *cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: "lock"}
	c.AddCommand(sub)
	return c
}

func TestLockStatusFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *LockStatusOptions) error) *cobra.Command {
		return lockCmd(newLockStatusCmd(flagFactory(), runF))
	}, []flagCase[LockStatusOptions]{
		{args: []string{"lock", "status"}, want: LockStatusOptions{}},
		{args: []string{"lock", "status", "--json"}, want: LockStatusOptions{JSON: true}},
		{args: []string{"lock", "status", "--yes"}, usage: "unknown flag: --yes"},
		{args: []string{"lock", "status", "api"}, usage: `oops lock status takes no arguments, got "api"`},
	})
}

func TestLockReleaseFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *LockReleaseOptions) error) *cobra.Command {
		return lockCmd(newLockReleaseCmd(flagFactory(), runF))
	}, []flagCase[LockReleaseOptions]{
		{args: []string{"lock", "release"}, want: LockReleaseOptions{}},
		{args: []string{"lock", "release", "--force", "-y", "-m", "ci runner killed"},
			want: LockReleaseOptions{Force: true, Yes: true, Reason: "ci runner killed"}},
		{args: []string{"lock", "release", "--dry-run", "--message=why"}, want: LockReleaseOptions{DryRun: true, Reason: "why"}},
		{args: []string{"lock", "release", "-m"}, usage: "flag needs an argument: 'm' in -m"},
		{args: []string{"lock", "release", "--json"}, usage: "unknown flag: --json"},
		{args: []string{"lock", "release", "api"}, usage: `oops lock release takes no arguments, got "api"`},
	})
}
