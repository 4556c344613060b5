package cmd

import (
	"context"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestSwitchFlags: the switching commands (rollback, shift, promote, off)
// and repair parse their flags into their options, refuse what cannot go
// together before anything runs, and bind every dependency.
func TestSwitchFlags(t *testing.T) {
	t.Parallel()
	build := func(cmd func(*Factory, func(context.Context, *SwitchOptions) error) *cobra.Command) func(func(context.Context, *SwitchOptions) error) *cobra.Command {
		return func(runF func(context.Context, *SwitchOptions) error) *cobra.Command { return cmd(flagFactory(), runF) }
	}
	t.Run("rollback", func(t *testing.T) {
		checkFlags(t, build(newRollbackCmd), []flagCase[SwitchOptions]{
			{args: []string{"rollback"}, want: SwitchOptions{}},
			{args: []string{"rollback", "--yes", "-m", "500s after 4f2a1c9"}, want: SwitchOptions{Yes: true, Reason: "500s after 4f2a1c9"}},
			{args: []string{"rollback", "--to", "v1.4.1", "-y"}, want: SwitchOptions{To: "v1.4.1", Yes: true}},
			{args: []string{"rollback", "--dry-run", "--force", "--verify-timeout", "0"}, want: SwitchOptions{DryRun: true, Force: true, VerifySet: true}},
			{args: []string{"rollback", "--no-lock", "-y"}, want: SwitchOptions{NoLock: true, Yes: true}},
			{args: []string{"rollback", "--bake", "2m"}, want: SwitchOptions{Bake: 2 * time.Minute, BakeSet: true}},
			{args: []string{"rollback", "--bake", "-1s"}, usage: "--bake must be 0 (no bake) or more, got -1s"},
			{args: []string{"rollback", "--timeout", "2m", "-y"}, want: SwitchOptions{Timeout: 2 * time.Minute, Yes: true}},
			{args: []string{"rollback", "--timeout", "-1s"}, usage: "--timeout must be 0"},
			{args: []string{"rollback", "--no-lock", "--to", "v1"}, usage: "--no-lock cannot be combined with --to"},
			{args: []string{"rollback", "green"}, usage: `oops rollback takes no arguments, got "green"`},
			{args: []string{"rollback", "--canary", "10"}, usage: "unknown flag: --canary"},
		})
	})
	t.Run("shift", func(t *testing.T) {
		checkFlags(t, build(newShiftCmd), []flagCase[SwitchOptions]{
			{args: []string{"shift", "10", "-m", "canary"}, want: SwitchOptions{Percent: 10, Reason: "canary"}},
			{args: []string{"shift", "25%", "--yes"}, want: SwitchOptions{Percent: 25, Yes: true}},
			{args: []string{"shift", "0", "--verify-timeout", "30s"}, want: SwitchOptions{VerifyTimeout: 30 * time.Second, VerifySet: true}},
			{args: []string{"shift", "10", "--bake", "5m"}, want: SwitchOptions{Percent: 10, Bake: 5 * time.Minute, BakeSet: true}},
			{args: []string{"shift", "101"}, usage: `PERCENT must be a whole number from 0 to 100, got "101"`},
			{args: []string{"shift", "ten"}, usage: `PERCENT must be a whole number from 0 to 100, got "ten"`},
			{args: []string{"shift"}, usage: "oops shift expects one PERCENT from 0 to 100"},
			{args: []string{"shift", "10", "--no-lock"}, usage: "unknown flag: --no-lock"},
		})
	})
	t.Run("promote", func(t *testing.T) {
		checkFlags(t, build(newPromoteCmd), []flagCase[SwitchOptions]{
			{args: []string{"promote", "--yes", "-m", "clean for 30 min"}, want: SwitchOptions{Yes: true, Reason: "clean for 30 min"}},
			{args: []string{"promote", "--dry-run"}, want: SwitchOptions{DryRun: true}},
			{args: []string{"promote", "--bake", "0"}, want: SwitchOptions{BakeSet: true}},
			{args: []string{"promote", "50"}, usage: `oops promote takes no arguments, got "50"`},
		})
	})
	t.Run("off", func(t *testing.T) {
		checkFlags(t, build(newOffCmd), []flagCase[SwitchOptions]{
			{args: []string{"off"}, want: SwitchOptions{}},
			{args: []string{"off", "--yes", "--force"}, want: SwitchOptions{Yes: true, Force: true}},
			{args: []string{"off", "--to", "blue"}, usage: "unknown flag: --to"},
			{args: []string{"off", "--bake", "1m"}, usage: "oops off points the preview load balancer, which takes no live traffic: there is nothing to bake"},
		})
	})
}

func TestRepairFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *RepairOptions) error) *cobra.Command {
		return newRepairCmd(flagFactory(), runF)
	}, []flagCase[RepairOptions]{
		{args: []string{"repair"}, want: RepairOptions{}},
		{args: []string{"repair", "--yes", "--to", "blue", "-m", "split by hand"}, want: RepairOptions{Yes: true, To: "blue", Reason: "split by hand"}},
		{args: []string{"repair", "--dry-run"}, want: RepairOptions{DryRun: true}},
		{args: []string{"repair", "--to", "purple"}, usage: `--to: "purple" is not a color: use blue or green`},
		{args: []string{"repair", "--force"}, usage: "unknown flag: --force"},
	})
}
