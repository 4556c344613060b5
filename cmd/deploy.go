package cmd

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
	"github.com/oops-deploy/oops/workflow"
)

type deployOptions struct {
	Yes, DryRun, NoSwitch, Force bool
	// NoWait (CodeDeploy) creates the deployment and returns its id.
	NoWait bool
	// Canary (ALB) is the percent of the traffic the release gets; 0: all.
	Canary        int
	Reason        string
	Timeout       time.Duration
	VerifyTimeout time.Duration
	verifySet     bool
	// action and command are what history and the lock record: deploy, or
	// rollback for oops rollback --to REV, which reuses this path.
	action, command string
}

func newDeployCmd(f *Factory) *cobra.Command {
	var opts deployOptions
	c := &cobra.Command{
		Use:   "deploy REV",
		Short: "Put a release on the off color and switch traffic to it",
		Long: `Resolve REV (a SHA, a unique prefix of 7 or more, a tag, a branch, HEAD~N)
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
plan and changes nothing.`,
		Example: `  oops deploy HEAD~1
  oops deploy v1.4.2 --yes -m "fix checkout totals"
  oops deploy 4f2a1c9 --no-switch     # install on the off color only
  oops deploy 4f2a1c9 --dry-run
  oops deploy HEAD --yes --no-wait   # CodeDeploy: print the deployment id, do not wait`,
		Args: exactArgs(1, "one revision (a commit, tag or branch)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.verifySet = cmd.Flags().Changed("verify-timeout")
			if opts.Timeout < 0 {
				return usageErrorf("--timeout must be 0 (the target's default) or more, got %s", opts.Timeout)
			}
			if err := checkNoWait(opts.NoWait, f.Config); err != nil {
				return err
			}
			if err := checkCanary(opts.Canary, opts.NoSwitch); err != nil {
				return err
			}
			return f.runDeploy(cmd.Context(), args[0], opts)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&opts.NoSwitch, "no-switch", false, "install on the off color but leave traffic where it is")
	fl.IntVar(&opts.Canary, "canary", 0, "ALB: send only this `percent` of the traffic to the release (then oops promote, or oops rollback)")
	fl.BoolVar(&opts.Force, "force", false, "deploy even if the release is live or marked BAD, and switch even if the health gate fails")
	fl.StringVarP(&opts.Reason, "message", "m", "", "why, recorded in history")
	fl.BoolVar(&opts.NoWait, "no-wait", false, "CodeDeploy: create the deployment, print its id and exit; nothing is recorded or switched")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "how long the install may take until healthy (default: the target's; local: 60s; CodeDeploy: until CodeDeploy ends it)")
	fl.DurationVar(&opts.VerifyTimeout, "verify-timeout", 0, "watch the new color this long after switching and switch back if it fails (default verify-timeout from .oopsrc, else 60s; 0: do not watch)")
	return c
}

func (f *Factory) runDeploy(ctx context.Context, rev string, opts deployOptions) error {
	vt, err := verifyTimeout(opts.VerifyTimeout, opts.verifySet, f.Config)
	if err != nil {
		return err
	}
	sha, err := f.ResolveRev(ctx, rev)
	if err != nil {
		return err
	}
	idx, err := f.Index(ctx)
	if err != nil {
		return err
	}
	rel, err := idx.Get(ctx, sha)
	if errors.Is(err, release.ErrNotPublished) {
		return f.notPublished(ctx, idx, sha, err)
	}
	if err != nil {
		return err
	}
	t, err := f.TargetFor(ctx, deployTargetOptions(opts.Canary))
	if err != nil {
		return err
	}
	st, err := t.State(ctx)
	if err == nil {
		err = noCanaryInProgress(t, st)
	}
	if err != nil {
		return err
	}
	short := rel.Short()
	if st.Live.Commit == sha && !opts.Force {
		fmt.Fprintf(f.IO.Out, "%s is already live on %s (%s): nothing to do (--force deploys it again)\n", short, st.Live.Color, t)
		return nil
	}
	if opts.action == "" {
		opts.action, opts.command = release.ActionDeploy, "oops deploy "+short
	}
	// A release rolled back from needs --force; checked again under the
	// lock, so the refusal is recorded in history.
	checkBad := func(ctx context.Context) error {
		if opts.Force {
			return nil
		}
		if err := f.Runner().Marks(ctx, idx.Store(), idx.App()).CheckBad(sha); err != nil {
			return withHint(err, fmt.Sprintf("if it has been fixed: %s --force; oops list shows the releases not marked BAD", opts.command))
		}
		return nil
	}
	// Already on the off color, verified and not known to be unhealthy:
	// just switch. (An off color that is down, or whose install never
	// passed its health check, gets the release installed again.)
	warm := st.Off.Commit == sha && !st.Off.Installing && (st.Off.Healthy == nil || *st.Off.Healthy)
	var d target.Deployer
	if !warm {
		if d, err = f.Deployer(ctx); err != nil {
			return err
		}
		// A deployer that lacks settings says so now, before the lock.
		if p, ok := d.(interface{ Preflight() error }); ok {
			if err := p.Preflight(); err != nil {
				c, _ := f.Config()
				return &config.Error{Path: c.Path, Msg: err.Error(), Hint: "see .oopsrc.example and the README for the keys"}
			}
		}
		// A CodeDeploy group that would pull both colors out of the load
		// balancer is refused before anything is marked or created.
		if g, ok := d.(interface{ CheckGroup(context.Context) error }); ok {
			if err := g.CheckGroup(ctx); err != nil {
				if !opts.Force || !errors.Is(err, codedeploy.ErrTrafficControl) && !errors.Is(err, codedeploy.ErrGroupUnchecked) {
					return err
				}
				f.IO.Progressf("warning (--force): %v", err)
			}
		}
	}

	if opts.DryRun {
		if err := checkBad(ctx); err != nil {
			return err
		}
		return f.printDeployPlan(ctx, t, d, st, rel, warm, opts)
	}
	return f.mutate(ctx, mutateOptions{Action: opts.action, Command: opts.command, Reason: opts.Reason}, func(ctx context.Context, ev *release.Event) error {
		ev.Target = t.String()
		// Read again under the lock: someone may have switched meanwhile.
		st, err := t.State(ctx)
		if err == nil {
			err = noCanaryInProgress(t, st)
		}
		if err != nil {
			return err
		}
		off := st.Off.Color
		ev.From = release.Side{Color: st.Live.Color, Commit: st.Live.Commit}
		ev.To = release.Side{Color: off, Commit: sha}
		if err := checkBad(ctx); err != nil {
			return err
		}
		what := fmt.Sprintf("Deploy %s to %s (off, %s) on %s", short, off, where(st.Off), t)
		if warm {
			what = fmt.Sprintf("%s already runs on %s (off): switch %s to it", short, off, t)
		} else if !opts.NoSwitch {
			what += " and switch traffic to it"
		}
		ok, err := f.confirm(opts.Yes, what+"?")
		if err != nil {
			return err
		}
		if !ok {
			return target.ErrAborted
		}
		if !warm {
			user, host := f.Who()
			desc := fmt.Sprintf("oops deploy %s by %s@%s", short, user, host)
			if opts.Reason != "" {
				desc += ": " + opts.Reason
			}
			if err := markInstalling(ctx, t, off, sha); err != nil {
				return err
			}
			f.IO.Progressf("deploying %s to %s (%s) on %s", short, off, where(st.Off), t)
			dep, err := d.Deploy(ctx, target.DeployRequest{
				Release: rel, Color: off, Port: st.Off.Port, Description: desc,
				Wait: !opts.NoWait, Timeout: opts.Timeout, Progress: f.IO.Progressf,
			})
			if dep != nil {
				ev.Deployment = dep.ID
			}
			if errors.Is(err, context.Canceled) && dep != nil {
				stopDeployment(ctx, f.IO, f.confirm, d, dep.ID)
			}
			if err == nil && opts.NoWait {
				fmt.Fprintln(f.IO.Out, dep.ID)
				f.IO.Progressf("not waiting for deployment %s (--no-wait): nothing recorded or switched", dep.ID)
				return nil
			}
			if err != nil {
				// AWS refusing the call (permissions, missing group) keeps its
				// own exit code; anything else is a failed deployment.
				// An artifact that is not what was published is its own
				// failure (exit 13), with what to do about it.
				if errors.Is(err, target.ErrIntegrity) {
					return withHint(err, fmt.Sprintf("nothing was unpacked, stopped or switched; the store's copy of %s is not the published release: find out who changed it, then put the published bytes back (oops fsck --deep checks every release)", rel.Key))
				}
				if !errors.Is(err, target.ErrDeployFailed) && !errors.Is(err, context.Canceled) && !workflow.IsAWSError(err) {
					err = fmt.Errorf("%w: %w", target.ErrDeployFailed, err)
				}
				return err
			}
			if err := t.SetCommit(ctx, off, sha); err != nil {
				return fmt.Errorf("record commit %s on %s: %w", short, off, err)
			}
		} else {
			f.IO.Progressf("%s already runs on %s: switching without reinstalling", short, off)
		}
		if opts.NoSwitch {
			ev.NoSwitch = true
			fmt.Fprintf(f.IO.Out, "%s runs on %s (off, %s); traffic stays on %s. Switch to it with: oops deploy %s\n",
				short, off, where(st.Off), st.Live.Color, short)
			return nil
		}
		res, err := target.Switch(ctx, t, target.SwitchOptions{
			To:            off,
			Weight:        opts.Canary,
			Force:         opts.Force,
			VerifyTimeout: vt,
			Logf:          f.IO.Progressf,
		})
		if err != nil {
			if res == nil || !res.Switched {
				err = fmt.Errorf("%s is installed on %s, but traffic was not switched: %w", short, off, err)
			}
			return err
		}
		prev := fmt.Sprintf("%s keeps %s for rollback", st.Live.Color, shortCommit(st.Live))
		if !st.Live.CommitKnown() {
			prev = fmt.Sprintf("nothing oops knows of ran on %s before", st.Live.Color)
		}
		if opts.Canary > 0 && opts.Canary < 100 {
			fmt.Fprintf(f.IO.Out, "%s gets %d%% of the traffic on %s now (%s, %s); %s keeps %d%%. Next: oops promote, or oops rollback\n",
				short, opts.Canary, t, off, where(st.Off), st.Live.Color, 100-opts.Canary)
			return nil
		}
		fmt.Fprintf(f.IO.Out, "%s is live now on %s (%s, %s); %s\n", short, off, t, where(st.Off), prev)
		return nil
	})
}

// printDeployPlan is --dry-run: what deploy would do, step by step.
func (f *Factory) printDeployPlan(ctx context.Context, t target.Target, d target.Deployer, st *target.State, rel release.Release, warm bool, opts deployOptions) error {
	off := st.Off.Color
	var b strings.Builder
	fmt.Fprintf(&b, "deploy %s to %s on %s:\n", rel.Short(), off, t)
	n := 0
	step := func(format string, args ...any) {
		n++
		fmt.Fprintf(&b, "  %d. %s\n", n, fmt.Sprintf(format, args...))
	}
	if warm {
		step("%s already runs on %s: nothing to install", rel.Short(), off)
	} else {
		if _, ok := t.(target.InstallRecorder); ok {
			step("record %s as installing (unverified) on %s", rel.Commit, off)
		}
		step("%s", installStep(d, rel, off, st.Off.Port, opts.NoWait))
		if opts.NoWait {
			fmt.Fprint(f.IO.Out, b.String())
			f.IO.Progressf("dry run: nothing changed")
			return nil
		}
		step("record commit %s on %s", rel.Commit, off)
	}
	if opts.NoSwitch {
		step("leave traffic on %s (--no-switch)", st.Live.Color)
	} else {
		if !opts.Force {
			step("check the health of %s", off)
		}
		weight := 100
		if opts.Canary > 0 {
			weight = opts.Canary
		}
		p, err := t.Plan(ctx, st, off, weight)
		if err != nil {
			return err
		}
		for _, s := range p.Steps {
			step("%s", s)
		}
	}
	fmt.Fprint(f.IO.Out, b.String())
	f.IO.Progressf("dry run: nothing changed")
	return nil
}

// notPublished says that sha has no release and lists the published ones
// nearest to it in commit time (the newest when git does not know sha).
func (f *Factory) notPublished(ctx context.Context, idx *store.Index, sha string, cause error) error {
	rels, err := idx.List(ctx, 0)
	if err != nil || len(rels) == 0 {
		return withHint(cause, "publish it first: oops publish FILE --commit "+release.Short(sha))
	}
	var at time.Time
	if wd, err := f.WorkDir(); err == nil {
		if info, err := release.CommitInfo(wd, sha); err == nil {
			at = info.Time
		}
	}
	if !at.IsZero() {
		when := func(r release.Release) time.Time {
			if !r.CommitTime.IsZero() {
				return r.CommitTime
			}
			return r.Published
		}
		sort.SliceStable(rels, func(i, j int) bool {
			return absDuration(when(rels[i]).Sub(at)) < absDuration(when(rels[j]).Sub(at))
		})
	}
	if len(rels) > 5 {
		rels = rels[:5]
	}
	var b strings.Builder
	if at.IsZero() {
		b.WriteString("the newest published releases:")
	} else {
		b.WriteString("the published releases nearest to it:")
	}
	for _, r := range rels {
		subj := r.Subject
		if subj == "" {
			subj = "-"
		}
		fmt.Fprintf(&b, "\n  %s  %s  %s", r.Short(), r.Published.Local().Format("2006-01-02 15:04"), subj)
	}
	b.WriteString("\ndeploy one of them, or publish this commit first: oops publish FILE --commit " + release.Short(sha))
	return withHint(cause, b.String())
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// markInstalling records on targets that keep what a color runs apart from
// the installer (ELB, ALB) that the off color is being replaced, before the
// install starts: a deploy killed half-way then leaves it "installing", not
// the release it replaced looking warm. SetCommit clears it once it passed.
func markInstalling(ctx context.Context, t target.Target, c release.Color, sha string) error {
	ir, ok := t.(target.InstallRecorder)
	if !ok {
		return nil
	}
	if err := ir.SetInstalling(ctx, c, sha); err != nil {
		return fmt.Errorf("record install of %s on %s: %w", release.Short(sha), c, err)
	}
	return nil
}
