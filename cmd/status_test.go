package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
)

func TestStatusFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *StatusOptions) error) *cobra.Command {
		return newStatusCmd(flagFactory(), runF)
	}, []flagCase[StatusOptions]{
		{args: []string{"status"}, want: StatusOptions{}},
		{args: []string{"status", "--json"}, want: StatusOptions{JSON: true}},
		{args: []string{"status", "--watch"}, usage: "unknown flag: --watch"},
		{args: []string{"status", "green"}, usage: `oops status takes no arguments, got "green"`},
	})
}
