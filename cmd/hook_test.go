package cmd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// hookCmd puts sub under `hook`, as NewRoot does, so args read as typed.
func hookCmd(sub *cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: "hook"}
	c.AddCommand(sub)
	return c
}

func TestHookEnvFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *HookEnvOptions) error) *cobra.Command {
		return hookCmd(newHookEnvCmd(flagFactory(), runF))
	}, []flagCase[HookEnvOptions]{
		{args: []string{"hook", "env"}, want: HookEnvOptions{Host: "127.0.0.1"}},
		{args: []string{"hook", "env", "--json", "--host", "::1"}, want: HookEnvOptions{Host: "::1", JSON: true}},
		{args: []string{"hook", "env", "--yes"}, usage: "unknown flag: --yes"},
		{args: []string{"hook", "env", "green"}, usage: `oops hook env takes no arguments, got "green"`},
	})
}

func TestHookWaitHealthyFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *HookWaitHealthyOptions) error) *cobra.Command {
		return hookCmd(newHookWaitHealthyCmd(flagFactory(), runF))
	}, []flagCase[HookWaitHealthyOptions]{
		{args: []string{"hook", "wait-healthy"}, want: HookWaitHealthyOptions{Host: "127.0.0.1", Timeout: 2 * time.Minute, Interval: time.Second}},
		{args: []string{"hook", "wait-healthy", "--timeout", "5m", "--interval=2s", "--host", "10.0.0.7"},
			want: HookWaitHealthyOptions{Host: "10.0.0.7", Timeout: 5 * time.Minute, Interval: 2 * time.Second}},
		{args: []string{"hook", "wait-healthy", "--timeout", "soon"}, usage: "--timeout"},
		{args: []string{"hook", "wait-healthy", "--json"}, usage: "unknown flag: --json"},
	})
}

func TestHookSwitchFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *HookSwitchOptions) error) *cobra.Command {
		return hookCmd(newHookSwitchCmd(flagFactory(), runF))
	}, []flagCase[HookSwitchOptions]{
		{args: []string{"hook", "switch"}, want: HookSwitchOptions{Host: "127.0.0.1"}},
		{args: []string{"hook", "switch", "--yes", "--dry-run", "--force", "--host", "::1"},
			want: HookSwitchOptions{Host: "::1", Yes: true, DryRun: true, Force: true}},
		{args: []string{"hook", "switch", "-y"}, usage: "unknown shorthand flag: 'y' in -y"},
		{args: []string{"hook", "switch", "green"}, usage: `oops hook switch takes no arguments, got "green"`},
	})
}

// Outside a CodeDeploy hook there is no deployment to switch for: bad
// input (exit 2) that says what to use instead, before anything is read.
func TestHookSwitchNeedsADeployment(t *testing.T) {
	t.Parallel()
	f := flagFactory()
	f.Getenv = func(string) string { return "" }
	f.Getwd = func() (string, error) {
		t.Error("the working directory was asked: .oopsrc would be read")
		return t.TempDir(), nil
	}
	err := runFlags(hookCmd(newHookSwitchCmd(f, nil)), "hook", "switch", "--yes")
	if ExitCode(err) != ExitUsage || !strings.Contains(fmt.Sprint(err), "oops hook switch: DEPLOYMENT_ID is not set") {
		t.Fatalf("err = %v (exit %d), want DEPLOYMENT_ID is not set (exit %d)", err, ExitCode(err), ExitUsage)
	}
}
