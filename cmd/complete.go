package cmd

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
)

// completeRevs completes a REV (deploy, approve, rollback --to) from the
// store's newest releases: the short SHA, the subject as its description.
// A store that cannot be read completes nothing, silently.
func completeRevs(f *Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
		defer cancel()
		idx, err := f.Backends().Index(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		idx.OnCorrupt = nil // no warnings in the middle of a command line
		rels, err := idx.List(ctx, 200)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, r := range rels {
			if strings.HasPrefix(r.Commit, strings.ToLower(toComplete)) {
				out = append(out, cobra.CompletionWithDesc(r.Short(), revDescription(r)))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// revDescription says what a release is in a completion menu.
func revDescription(r release.Release) string {
	switch {
	case r.Subject != "":
		return strings.Join(strings.Fields(r.Subject), " ")
	case r.Bare:
		return "bare release, published " + r.Published.UTC().Format("2006-01-02 15:04")
	}
	return "published " + r.Published.UTC().Format("2006-01-02 15:04")
}

// firstArg completes the first positional argument with fn, and nothing
// after it.
func firstArg(fn cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return fn(cmd, args, toComplete)
	}
}

// completeWords completes from a fixed list (colors, percents).
func completeWords(words ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp)
}
