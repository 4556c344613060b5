package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
)

func TestPublishFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *PublishOptions) error) *cobra.Command {
		return newPublishCmd(flagFactory(), runF)
	}, []flagCase[PublishOptions]{
		{args: []string{"publish", "app.zip"}, want: PublishOptions{File: "app.zip", Commit: "HEAD"}},
		{args: []string{"publish", "app.tgz", "-c", "v1.4.2", "--dry-run", "--json", "-y", "--allow-dirty"},
			want: PublishOptions{File: "app.tgz", Commit: "v1.4.2", DryRun: true, JSON: true, Yes: true, AllowDirty: true}},
		{args: []string{"publish"}, usage: "one FILE (.zip, .tar.gz or .tgz)"},
		{args: []string{"publish", "a.zip", "b.zip"}, usage: "one FILE (.zip, .tar.gz or .tgz)"},
		{args: []string{"publish", "a.zip", "--commit"}, usage: "flag needs an argument: --commit"},
	})
}
