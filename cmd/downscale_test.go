package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
)

func TestDownscaleFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *DownscaleOptions) error) *cobra.Command {
		return newDownscaleCmd(flagFactory(), runF)
	}, []flagCase[DownscaleOptions]{
		{args: []string{"downscale"}, want: DownscaleOptions{}},
		{args: []string{"downscale", "--yes", "--force", "-m", "holds"}, want: DownscaleOptions{Yes: true, Force: true, Reason: "holds"}},
		{args: []string{"downscale", "--dry-run"}, want: DownscaleOptions{DryRun: true}},
		{args: []string{"downscale", "blue"}, usage: "oops downscale takes no arguments"},
		{args: []string{"downscale", "--to", "blue"}, usage: "unknown flag: --to"},
	})
}

func TestHookFetchFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *HookFetchOptions) error) *cobra.Command {
		return newHookFetchCmd(flagFactory(), runF)
	}, []flagCase[HookFetchOptions]{
		{args: []string{"fetch"}, want: HookFetchOptions{}},
		{args: []string{"fetch", "--dir", "/opt/app/current", "--imds-endpoint", "http://127.0.0.1:9"}, want: HookFetchOptions{Dir: "/opt/app/current", IMDSEndpoint: "http://127.0.0.1:9"}},
		{args: []string{"fetch", "--commit", "abc", "--json"}, want: HookFetchOptions{Commit: "abc", JSON: true}},
		{args: []string{"fetch", "x"}, usage: "takes no arguments"},
	})
}
