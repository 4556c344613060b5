package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"
)

func TestHistoryFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *HistoryOptions) error) *cobra.Command {
		return newHistoryCmd(flagFactory(), runF)
	}, []flagCase[HistoryOptions]{
		{args: []string{"history"}, want: HistoryOptions{Limit: 20}},
		{args: []string{"history", "-n", "0", "--before", "01J9", "--json"}, want: HistoryOptions{Before: "01J9", JSON: true}},
		{args: []string{"history", "--limit", "100"}, want: HistoryOptions{Limit: 100}},
		{args: []string{"history", "--limit", "-5"}, usage: "--limit must be 0 (everything) or more, got -5"},
		{args: []string{"history", "--before"}, usage: "flag needs an argument: --before"},
		{args: []string{"history", "--since", "1h"}, usage: "unknown flag: --since"},
		{args: []string{"history", "deploy"}, usage: `oops history takes no arguments, got "deploy"`},
	})
}
