package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

func newHookCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "hook",
		Short: "Commands for appspec.yml lifecycle hooks on the instances",
		Long: `Commands for the lifecycle hooks of a CodeDeploy appspec.yml, run by the
CodeDeploy agent on each instance. They read LIFECYCLE_EVENT, DEPLOYMENT_ID,
APPLICATION_NAME and DEPLOYMENT_GROUP_NAME from the agent and .oopsrc from
the bundle (run them with -C pointing at the bundle root).

The color a deployment installs is the off color when its first hook asks,
and stays that color for all the deployment's hooks.`,
		Example: `  eval "$(oops hook env)"          # OOPS_COLOR, OOPS_PORT, OOPS_COMMIT ...
  oops hook wait-healthy --timeout 2m
  oops hook switch --yes           # single-instance setups without "oops deploy"`,
		Args: noArgs,
	}
	c.AddCommand(newHookEnvCmd(f, nil), newHookWaitHealthyCmd(f, nil), newHookSwitchCmd(f, nil), newHookFetchCmd(f, nil))
	return c
}

// HookEnvOptions are what `oops hook env` runs with: flags and dependencies.
type HookEnvOptions struct {
	IO     *IOStreams
	Runner func() *workflow.Runner

	// Host is where this instance's colors answer (tests: 127.0.0.1).
	Host   string
	JSON   bool
	Export iostreams.Exporter // --jq, --template
}

// newHookEnvCmd builds `oops hook env`; runF replaces the run in flag
// tests (nil: hookEnvRun).
func newHookEnvCmd(f *Factory, runF func(context.Context, *HookEnvOptions) error) *cobra.Command {
	opts := &HookEnvOptions{IO: f.IO, Runner: f.Runner}
	c := &cobra.Command{
		Use:   "env",
		Short: "Print the deployment's color, port and commit as shell assignments",
		Long: `Print, as shell assignments for eval, the color this deployment installs
(OOPS_COLOR, OOPS_PORT), the live color (OOPS_LIVE_COLOR, OOPS_LIVE_PORT),
the commit being deployed (OOPS_COMMIT), the deployment id, and the URL of
the color's health check on this instance (OOPS_HEALTH_URL).`,
		Example: `  eval "$(oops hook env)"; systemctl restart "myapp@$OOPS_COLOR"
  oops hook env --json`,
		Args: noArgs,
	}
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	c.Flags().StringVar(&opts.Host, "host", "127.0.0.1", "`address` where this instance's colors answer")
	return runCmd(c, opts, runF, hookEnvRun)
}

func hookEnvRun(ctx context.Context, opts *HookEnvOptions) error {
	env, err := opts.Runner().HookEnv(ctx, opts.Host)
	if err != nil {
		return err
	}
	if opts.JSON {
		return opts.Export.Write(opts.IO.Out, env, time.Now)
	}
	_, err = io.WriteString(opts.IO.Out, env.Shell())
	return err
}

// HookWaitHealthyOptions are what `oops hook wait-healthy` runs with: flags and dependencies.
type HookWaitHealthyOptions struct {
	Runner func() *workflow.Runner // it reports on stderr through the Runner

	Host              string
	Timeout, Interval time.Duration
}

// newHookWaitHealthyCmd builds `oops hook wait-healthy`; runF replaces the
// run in flag tests (nil: hookWaitHealthyRun).
func newHookWaitHealthyCmd(f *Factory, runF func(context.Context, *HookWaitHealthyOptions) error) *cobra.Command {
	opts := &HookWaitHealthyOptions{Runner: f.Runner}
	c := &cobra.Command{
		Use:   "wait-healthy",
		Short: "Wait until the deployment's color answers its health check on this instance",
		Long: `Poll the health check of the color this deployment installs, on this
instance (127.0.0.1:<port><path>), until it answers 2xx or 3xx (a redirect
is not followed). A non-zero exit (6) fails the lifecycle event, and so the
deployment, before any traffic moves.`,
		Example: `  oops hook wait-healthy
  oops hook wait-healthy --timeout 5m`,
		Args: noArgs,
	}
	c.Flags().DurationVar(&opts.Timeout, "timeout", 2*time.Minute, "give up after this `duration`")
	c.Flags().DurationVar(&opts.Interval, "interval", time.Second, "time between checks")
	c.Flags().StringVar(&opts.Host, "host", "127.0.0.1", "`address` where this instance's colors answer")
	return runCmd(c, opts, runF, hookWaitHealthyRun)
}

func hookWaitHealthyRun(ctx context.Context, opts *HookWaitHealthyOptions) error {
	return opts.Runner().HookWaitHealthy(ctx, opts.Host, opts.Timeout, opts.Interval)
}

// HookSwitchOptions are what `oops hook switch` runs with: flags and dependencies.
type HookSwitchOptions struct {
	IO     *IOStreams
	Runner func() *workflow.Runner
	Getenv func(string) string
	// VerifyTimeout is --verify-timeout's value from .oopsrc (hook switch
	// has no flag for it); Confirm asks the operator.
	VerifyTimeout func(flag time.Duration, set bool) (time.Duration, error)
	Confirm       func(yes bool, question string) (bool, error)

	Host               string
	Yes, DryRun, Force bool
}

// newHookSwitchCmd builds `oops hook switch`; runF replaces the run in flag
// tests (nil: hookSwitchRun).
func newHookSwitchCmd(f *Factory, runF func(context.Context, *HookSwitchOptions) error) *cobra.Command {
	opts := &HookSwitchOptions{
		IO: f.IO, Runner: f.Runner, Getenv: func(k string) string { return f.Getenv(k) },
		VerifyTimeout: func(flag time.Duration, set bool) (time.Duration, error) { return verifyTimeoutOf(f.Config)(flag, set) },
		Confirm:       f.confirm,
	}
	c := &cobra.Command{
		Use:   "switch",
		Short: "Switch traffic to the color this deployment installed (once per deployment)",
		Long: `Switch the load balancer to the color this CodeDeploy deployment installed,
with the same health gate and verification as oops rollback, and record the
deployment's commit on that color. For single-instance setups where the
deployment was not started by a waiting "oops deploy" (CodePipeline, the
console, or oops deploy --no-wait): a waiting "oops deploy" switches itself,
so here this does nothing.

Idempotent per deployment: a second call (a retried hook) changes nothing.`,
		Example: `  oops hook switch --yes`,
		Args:    noArgs,
	}
	c.Flags().BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation (hooks have no terminal: pass it)")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan, change nothing")
	c.Flags().BoolVar(&opts.Force, "force", false, "switch even if the color fails its health gate")
	c.Flags().StringVar(&opts.Host, "host", "127.0.0.1", "`address` where this instance's colors answer")
	return runCmd(c, opts, runF, hookSwitchRun)
}

func hookSwitchRun(ctx context.Context, opts *HookSwitchOptions) error {
	if opts.Getenv(workflow.EnvDeploymentID) == "" {
		return withHint(usageErrorf("oops hook switch: %s is not set", workflow.EnvDeploymentID),
			"it runs inside a CodeDeploy lifecycle hook; to switch by hand use oops rollback")
	}
	r := opts.Runner()
	env, err := r.HookEnv(ctx, opts.Host)
	if err != nil {
		return err
	}
	vt, err := opts.VerifyTimeout(0, false)
	if err != nil {
		return err
	}
	out, err := r.HookSwitch(ctx, env, workflow.HookSwitchRequest{
		DryRun: opts.DryRun, Force: opts.Force, Verify: vt,
		Confirm: func(question string, p *target.Plan) (bool, error) {
			if !opts.Yes {
				fmt.Fprint(opts.IO.ErrOut, p.String())
			}
			return opts.Confirm(opts.Yes, question)
		},
	})
	if out != nil {
		printHookSwitch(opts.IO, out)
	}
	return err
}

// printHookSwitch says what `oops hook switch` did.
func printHookSwitch(ios *IOStreams, out *workflow.HookSwitchOutcome) {
	id := out.Deployment
	switch {
	case out.Watched:
		fmt.Fprintf(ios.ErrOut, "oops deploy is waiting for deployment %s and switches when it succeeds: nothing to do here\n", id)
	case out.AlreadySwitched:
		fmt.Fprintf(ios.ErrOut, "deployment %s already switched to %s: nothing to do\n", id, out.Color)
	case out.DryRun && out.Plan == nil:
		fmt.Fprintf(ios.Out, "%s is already live: nothing to switch\n", out.Color)
	case out.DryRun:
		fmt.Fprint(ios.Out, out.Plan.String())
	case out.Switched:
		fmt.Fprintf(ios.ErrOut, "deployment %s: %s is live\n", id, out.Color)
	}
}
