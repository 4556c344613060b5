// Package cmd is the cobra wiring of oops: one file per verb, flags into an
// options struct, and a run function that takes its dependencies from the
// Factory so it can be tested without cobra.
package cmd

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/spf13/cobra"
)

// NewRoot builds the oops command tree.
func NewRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "oops",
		Short: "Blue/green release history and instant rollback",
		Long: `oops keeps an index of every built artifact by git commit, deploys any
release to the off color, switches traffic, and rolls back instantly by
pointing the load balancer at the off color, which still runs the previous
release.`,
		Example: `  oops list                 # releases, newest first, with the live one marked
  oops status               # which color is live, which commit each runs
  oops rollback             # back to the off color, now
  oops deploy HEAD~1        # put a release on the off color and switch to it`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(flagUsageError)
	pf := root.PersistentFlags()
	pf.StringVar(&f.ConfigPath, "config", "", "read this config `file` instead of searching for .oopsrc")
	pf.StringVarP(&f.Dir, "dir", "C", "", "run as if oops was started in `dir`")
	pf.StringVar(&f.Region, "region", "", "AWS `region` (overrides .oopsrc and AWS_REGION)")
	pf.DurationVar(&f.LockWait, "lock-wait", 0, "wait up to `duration` for another operator's lock instead of failing at once")

	// One constructor per verb, each in its own file.
	for _, add := range []func(*Factory) *cobra.Command{
		func(f *Factory) *cobra.Command { return newVersionCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newHistoryCmd(f, nil) },
		newLockCmd,
		func(f *Factory) *cobra.Command { return newPublishCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newListCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newInitCmd(f, nil) },
		newHookCmd,
		func(f *Factory) *cobra.Command { return newStatusCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newRollbackCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newOffCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newRepairCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newShiftCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newPromoteCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newDeployCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newApproveCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newProxyCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newDoctorCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newFsckCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newIAMPolicyCmd(f, nil) },
		func(f *Factory) *cobra.Command { return newDownscaleCmd(f, nil) },
	} {
		root.AddCommand(add(f))
	}
	addCompletionCmd(root)
	return root
}

// flagUsageError makes a flag cobra cannot parse a usage error (exit 2).
func flagUsageError(_ *cobra.Command, err error) error { return usageError{Err: err} }

// addCompletionCmd adds cobra's `completion` command (bash, zsh, fish,
// powershell) now rather than at Execute, so it and `help` get examples
// like every other command.
func addCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "completion":
			c.Example = "  source <(oops completion bash)              # this shell\n  oops completion zsh > \"${fpath[1]}/_oops\"   # every zsh\n  oops completion fish > ~/.config/fish/completions/oops.fish"
			examples := map[string]string{
				"bash":       "  source <(oops completion bash)",
				"zsh":        "  oops completion zsh > \"${fpath[1]}/_oops\"",
				"fish":       "  oops completion fish > ~/.config/fish/completions/oops.fish",
				"powershell": "  oops completion powershell | Out-String | Invoke-Expression",
			}
			for _, sh := range c.Commands() {
				sh.Example = examples[sh.Name()]
			}
		case "help":
			c.Example = "  oops help publish"
		}
	}
}

// Main runs oops with args and returns the exit code.
func Main(f *Factory, args []string) int {
	// SIGHUP too: a closed terminal must release the lock like Ctrl-C.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	root := NewRoot(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command") {
		err = withHint(usageError{Err: err}, "see: oops --help")
	}
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, errSilent) {
		return ExitCode(err)
	}
	PrintError(f.IO.ErrOut, err)
	return ExitCode(err)
}

// errSilent wraps errors whose message was already printed.
var errSilent = errors.New("")

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return withHint(usageErrorf("%s expects %s", cmd.CommandPath(), what), "see: "+cmd.CommandPath()+" --help")
		}
		return nil
	}
}

// noArgs rejects positional arguments with a usage exit code.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return withHint(usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0]), "see: "+cmd.CommandPath()+" --help")
	}
	return nil
}

// runCmd finishes a command built as newXCmd(f, runF): opts (XOptions)
// carries its flags and the dependencies the run takes from the Factory,
// bound in newXCmd and replaced in tests; its RunE, when set, only checks
// flags and arguments; then the run is runF when given (flag tests), else
// run.
func runCmd[O any](c *cobra.Command, opts *O, runF, run func(context.Context, *O) error) *cobra.Command {
	check := c.RunE
	if runF == nil {
		runF = run
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if check != nil {
			if err := check(cmd, args); err != nil {
				return err
			}
		}
		return runF(cmd.Context(), opts)
	}
	return c
}

// addJSONFlags adds --json (what: its help) and the filters of its output,
// --jq and --template (as gh's): a filter implies --json and is parsed
// before the run, so a bad one changes nothing.
func addJSONFlags(c *cobra.Command, json *bool, export *iostreams.Exporter, what string) {
	fl := c.Flags()
	fl.BoolVar(json, "json", false, what)
	fl.StringVarP(&export.JQ, "jq", "q", "", "filter the JSON output with a jq `expression` (built in: no jq needed); implies --json")
	fl.StringVarP(&export.Template, "template", "t", "", "format the JSON output with a Go `template` (helpers: timeago, truncate, join, json, upper, lower); implies --json")
	check := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if err := export.Check(); err != nil {
			return withHint(usageError{Err: err}, "see the --jq and --template examples in the README (Scripting)")
		}
		if export.Set() {
			*json = true
		}
		if check != nil {
			return check(cmd, args)
		}
		return nil
	}
}
