package cmd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/workflow"
)

// DeployOptions are what `oops deploy REV` (and rollback --to) runs with.
type DeployOptions struct {
	IO      *IOStreams
	Runner  func() *workflow.Runner
	Verify  func(flag time.Duration, set bool) (time.Duration, error) // --verify-timeout, else .oopsrc
	Confirm func(yes bool, question string) (bool, error)

	Rev                          string
	Yes, DryRun, NoSwitch, Force bool
	// NoWait (CodeDeploy) creates the deployment and returns its id.
	NoWait bool
	// Canary (ALB) is the percent of the traffic the release gets; 0: all.
	// CanarySteps are the further steps of --canary 10,25,50,100.
	Canary                 int
	CanarySteps            []int
	Reason                 string
	Timeout, VerifyTimeout time.Duration
	VerifySet              bool
	// Bake is --bake (BakeSet: given; else bake from .oopsrc).
	Bake    time.Duration
	BakeSet bool
	// Rollback is oops rollback --to REV, which reuses this path: history
	// and the lock record a rollback.
	Rollback bool
}

// newDeployOptions binds the Factory's dependencies; oops rollback --to
// starts from them too.
func newDeployOptions(f *Factory) *DeployOptions {
	return &DeployOptions{IO: f.IO, Runner: f.Runner, Verify: func(flag time.Duration, set bool) (time.Duration, error) { return verifyTimeoutOf(f.Config)(flag, set) }, Confirm: f.confirm}
}

const deployLong = `Resolve REV (a SHA, a unique prefix of 7 or more, a tag, a branch, HEAD~N)
to a full commit, find its published release, install it on the off color,
wait until it is healthy, record the commit there, and switch traffic to
it with the same health-gated switch as oops rollback. The color that was
live keeps running the previous release, so oops rollback is instant.

  - REV already live: nothing to do (exit 0), unless --force.
  - REV already on the off color (an earlier deploy) and not known to be
    unhealthy: no reinstall; the off color is health-checked and traffic
    switched, instantly.
  - No release for REV: nothing changes (exit 3); the nearest published
    releases are listed.
  - A release marked BAD (rolled back from) needs --force (exit 12).
  - With "require-approval" in .oopsrc: installed, then stopped before the
    switch (exit 14) until someone else runs oops approve REV; then
    oops deploy REV switches at once (nothing reinstalled).
  - .oopsrc "hooks" run at pre-deploy, post-install, pre-switch and
    post-switch; one before the switch that fails refuses it (exit 6).

How a release is installed depends on the target: the local target
unpacks it under state-dir and starts "command" on the off color's port
(PORT, OOPS_COLOR, OOPS_COMMIT, OOPS_RELEASE_DIR set), detached, and waits
for its health check; a release that never gets healthy is stopped, with
the tail of its log, and nothing is switched (exit 7).

With a load balancer and a "deployment-group" in .oopsrc, CodeDeploy
installs it: one deployment whose revision is the release's S3 object,
watched instance by instance (lifecycle event and status on stderr) until
it succeeds, fails or --timeout passes. A failure prints the failing
instance, lifecycle event, error code, script and log tail, and switches
nothing (exit 7). Ctrl-C asks whether to stop the deployment. --no-wait
prints the deployment id and exits; the appspec's hooks (oops hook) find
the color to install themselves.

On a terminal oops asks first; scripts pass --yes. --dry-run prints the
plan and changes nothing.`

// newDeployCmd builds `oops deploy`; runF replaces the run in flag tests (nil: deployRun).
func newDeployCmd(f *Factory, runF func(context.Context, *DeployOptions) error) *cobra.Command {
	opts := newDeployOptions(f)
	c := &cobra.Command{
		Use:   "deploy REV",
		Short: "Put a release on the off color and switch traffic to it",
		Long:  deployLong,
		Example: `  oops deploy HEAD~1
  oops deploy v1.4.2 --yes -m "fix checkout totals"
  oops deploy 4f2a1c9 --no-switch     # install on the off color only
  oops deploy 4f2a1c9 --dry-run
  oops deploy HEAD --yes --no-wait   # CodeDeploy: print the deployment id, do not wait`,
		Args: exactArgs(1, "one revision (a commit, tag or branch)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Rev, opts.VerifySet, opts.BakeSet = args[0], cmd.Flags().Changed("verify-timeout"), cmd.Flags().Changed("bake")
			if err := opts.check(); err != nil {
				return err
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&opts.NoSwitch, "no-switch", false, "install on the off color but leave traffic where it is")
	fl.Var(&canaryFlag{opts}, "canary", "send only this `percent` of the traffic to the release (then oops promote, or oops rollback); steps like 10,25,50,100 bake each before the next and go back to the live color if one fails")
	fl.BoolVar(&opts.Force, "force", false, "deploy even if the release is live or marked BAD, and switch even if the health gate fails")
	fl.StringVarP(&opts.Reason, "message", "m", "", "why, recorded in history")
	fl.BoolVar(&opts.NoWait, "no-wait", false, "CodeDeploy: create the deployment, print its id and exit; nothing is recorded or switched")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "how long the install may take until healthy (default: the target's; local: 60s; CodeDeploy: until CodeDeploy ends it)")
	fl.DurationVar(&opts.VerifyTimeout, "verify-timeout", 0, "watch the new color this long after switching and switch back if it fails (default verify-timeout from .oopsrc, else 60s; 0: do not watch)")
	c.ValidArgsFunction = firstArg(completeRevs(f))
	addBakeFlag(c, &opts.Bake)
	return runCmd(c, opts, runF, deployRun)
}

// check refuses flags that cannot go together or are out of range.
func (o *DeployOptions) check() error {
	if o.Timeout < 0 {
		return usageErrorf("--timeout must be 0 (the target's default) or more, got %s", o.Timeout)
	}
	if err := checkCanary(o.Canary, o.NoSwitch); err != nil {
		return err
	}
	prev := o.Canary
	for _, p := range o.CanarySteps {
		if err := checkCanary(p, false); err != nil {
			return err
		}
		if p <= prev {
			return usageErrorf("--canary steps must grow, got %d after %d", p, prev)
		}
		prev = p
	}
	if _, err := bakeFlag(o.Bake, o.BakeSet); err != nil {
		return err
	}
	if o.VerifySet {
		_, err := o.Verify(o.VerifyTimeout, true) // the flag alone: nothing is read
		return err
	}
	return nil
}

// deployRun runs the Deploy workflow (RollbackTo for rollback --to) and
// prints what it did.
func deployRun(ctx context.Context, opts *DeployOptions) error {
	vt, err := opts.Verify(opts.VerifyTimeout, opts.VerifySet)
	if err != nil {
		return err
	}
	r := opts.Runner()
	run := r.Deploy
	if opts.Rollback {
		run = r.RollbackTo
	}
	out, err := run(ctx, opts.request(vt))
	if out != nil {
		printDeploy(opts, out)
	}
	return err
}

// request is the Deploy workflow's request for these flags; the operator
// confirms on stderr.
func (o *DeployOptions) request(verify time.Duration) workflow.DeployRequest {
	req := workflow.DeployRequest{
		Rev: o.Rev, Reason: o.Reason, Force: o.Force, DryRun: o.DryRun, NoSwitch: o.NoSwitch, NoWait: o.NoWait,
		Canary: o.Canary, CanarySteps: o.CanarySteps, Timeout: o.Timeout, Verify: verify,
		Confirm: func(q string) (bool, error) { return o.Confirm(o.Yes, q) },
	}
	req.Bake, _ = bakeFlag(o.Bake, o.BakeSet) // checked with the flags
	if o.IO.InTTY {
		// After Ctrl-C, even with --yes: stopping a deployment is asked.
		req.AskStop = func(q string) (bool, error) { return o.Confirm(false, q) }
	}
	return req
}

// printDeploy prints what a deploy did: on stdout the sentence scripts
// read, on stderr that a dry run changed nothing.
func printDeploy(opts *DeployOptions, out *workflow.DeployOutcome) {
	w, st, short := opts.IO.Out, out.Before, out.Release.Short()
	off := st.Off.Color
	switch {
	case out.AlreadyLive:
		fmt.Fprintf(w, "%s is already live on %s (%s): nothing to do (--force deploys it again)\n", short, st.Live.Color, out.Target)
	case opts.DryRun:
		fmt.Fprintf(w, "deploy %s to %s on %s:\n", short, off, out.Target)
		for i, s := range out.Plan {
			fmt.Fprintf(w, "  %d. %s\n", i+1, s)
		}
		fmt.Fprintln(opts.IO.ErrOut, "dry run: nothing changed")
	case out.DeploymentID != "":
		fmt.Fprintln(w, out.DeploymentID)
	case out.Switch == nil && out.Approval != nil && !out.Approval.Approved():
		fmt.Fprintf(w, "%s runs on %s (off, %s); traffic stays on %s until someone other than %s approves it: oops approve %s\n",
			short, off, st.Off.Where(), st.Live.Color, out.Approval.RequestedBy, short)
	case out.Switch == nil: // --no-switch
		fmt.Fprintf(w, "%s runs on %s (off, %s); traffic stays on %s. Switch to it with: oops deploy %s\n",
			short, off, st.Off.Where(), st.Live.Color, short)
	case opts.finalCanary() > 0 && opts.finalCanary() < 100:
		fmt.Fprintf(w, "%s gets %d%% of the traffic on %s now (%s, %s); %s keeps %d%%. Next: oops promote, or oops rollback\n",
			short, opts.finalCanary(), out.Target, off, st.Off.Where(), st.Live.Color, 100-opts.finalCanary())
	default:
		prev := fmt.Sprintf("%s keeps %s for rollback", st.Live.Color, workflow.ShortCommit(st.Live))
		if !st.Live.CommitKnown() {
			prev = fmt.Sprintf("nothing oops knows of ran on %s before", st.Live.Color)
		}
		fmt.Fprintf(w, "%s is live now on %s (%s, %s); %s\n", short, off, out.Target, st.Off.Where(), prev)
	}
}

// finalCanary is the share --canary leaves the release with.
func (o *DeployOptions) finalCanary() int {
	if n := len(o.CanarySteps); n > 0 {
		return o.CanarySteps[n-1]
	}
	return o.Canary
}

// canaryFlag is --canary: one percent, or steps "10,25,50,100".
type canaryFlag struct{ o *DeployOptions }

func (f *canaryFlag) String() string {
	if f.o == nil || f.o.Canary == 0 {
		return ""
	}
	parts := []string{strconv.Itoa(f.o.Canary)}
	for _, p := range f.o.CanarySteps {
		parts = append(parts, strconv.Itoa(p))
	}
	return strings.Join(parts, ",")
}

func (f *canaryFlag) Set(s string) error {
	var steps []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(p, "%")))
		if err != nil {
			return fmt.Errorf("want a percent or steps like 10,25,50,100")
		}
		steps = append(steps, n)
	}
	f.o.Canary, f.o.CanarySteps = steps[0], steps[1:]
	if len(f.o.CanarySteps) == 0 {
		f.o.CanarySteps = nil
	}
	return nil
}

func (f *canaryFlag) Type() string { return "percent" }
