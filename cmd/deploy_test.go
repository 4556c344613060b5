package cmd

import (
	"context"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

func TestDeployFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *DeployOptions) error) *cobra.Command {
		return newDeployCmd(flagFactory(), runF)
	}, []flagCase[DeployOptions]{
		{args: []string{"deploy", "HEAD~1"}, want: DeployOptions{Rev: "HEAD~1"}},
		{args: []string{"deploy", "v1.4.2", "--yes", "-m", "fix checkout totals"}, want: DeployOptions{Rev: "v1.4.2", Yes: true, Reason: "fix checkout totals"}},
		{args: []string{"deploy", "4f2a1c9", "--no-switch", "--dry-run", "--force"}, want: DeployOptions{Rev: "4f2a1c9", NoSwitch: true, DryRun: true, Force: true}},
		{args: []string{"deploy", "HEAD", "-y", "--no-wait", "--timeout", "5m"}, want: DeployOptions{Rev: "HEAD", Yes: true, NoWait: true, Timeout: 5 * time.Minute}},
		{args: []string{"deploy", "HEAD", "--canary", "10"}, want: DeployOptions{Rev: "HEAD", Canary: 10}},
		{args: []string{"deploy", "HEAD", "--canary", "100"}, want: DeployOptions{Rev: "HEAD", Canary: 100}},
		{args: []string{"deploy", "HEAD", "--canary", "10,25,50,100"}, want: DeployOptions{Rev: "HEAD", Canary: 10, CanarySteps: []int{25, 50, 100}}},
		{args: []string{"deploy", "HEAD", "--canary", "10,5"}, usage: "--canary steps must grow, got 5 after 10"},
		{args: []string{"deploy", "HEAD", "--canary", "10,101"}, usage: "--canary must be a percent from 1 to 100, got 101"},
		{args: []string{"deploy", "HEAD", "--verify-timeout", "0"}, want: DeployOptions{Rev: "HEAD", VerifySet: true}},
		{args: []string{"deploy", "HEAD", "--verify-timeout", "2m"}, want: DeployOptions{Rev: "HEAD", VerifyTimeout: 2 * time.Minute, VerifySet: true}},
		{args: []string{"deploy", "HEAD", "--bake", "90s"}, want: DeployOptions{Rev: "HEAD", Bake: 90 * time.Second, BakeSet: true}},
		{args: []string{"deploy", "HEAD", "--bake", "-1m"}, usage: "--bake must be 0 (no bake) or more, got -1m0s"},
		{args: []string{"deploy"}, usage: "oops deploy expects one revision (a commit, tag or branch)"},
		{args: []string{"deploy", "HEAD", "HEAD~1"}, usage: "oops deploy expects one revision (a commit, tag or branch)"},
		{args: []string{"deploy", "HEAD", "--canary", "101"}, usage: "--canary must be a percent from 1 to 100, got 101"},
		{args: []string{"deploy", "HEAD", "--canary", "-5"}, usage: "--canary must be a percent from 1 to 100, got -5"},
		{args: []string{"deploy", "HEAD", "--canary", "10", "--no-switch"}, usage: "--canary sends traffic to the release; it cannot go with --no-switch"},
		{args: []string{"deploy", "HEAD", "--verify-timeout", "-1s"}, usage: "--verify-timeout must be 0 (no verification) or more, got -1s"},
		{args: []string{"deploy", "HEAD", "--timeout", "-1s"}, usage: "--timeout must be 0 (the target's default) or more, got -1s"},
		{args: []string{"deploy", "HEAD", "--timeout", "soon"}, usage: `invalid argument "soon"`},
		{args: []string{"deploy", "HEAD", "--canary", "ten"}, usage: `invalid argument "ten"`},
		{args: []string{"deploy", "HEAD", "--to", "x"}, usage: "unknown flag: --to"},
	})
}
