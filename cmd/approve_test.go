package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
)

func TestApproveFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *ApproveOptions) error) *cobra.Command {
		return newApproveCmd(flagFactory(), runF)
	}, []flagCase[ApproveOptions]{
		{args: []string{"approve", "4f2a1c9"}, want: ApproveOptions{Rev: "4f2a1c9"}},
		{args: []string{"approve", "v1.4.2", "-m", "reviewed", "--yes"}, want: ApproveOptions{Rev: "v1.4.2", Message: "reviewed", Yes: true}},
		{args: []string{"approve", "HEAD", "--dry-run"}, want: ApproveOptions{Rev: "HEAD", DryRun: true}},
		{args: []string{"approve"}, usage: "oops approve expects one revision"},
		{args: []string{"approve", "a", "b"}, usage: "oops approve expects one revision"},
		{args: []string{"approve", "HEAD", "--force"}, usage: "unknown flag: --force"},
		{args: []string{"approve", "HEAD", "-m"}, usage: "flag needs an argument"},
	})
}
