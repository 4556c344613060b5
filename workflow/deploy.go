package workflow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
)

// DeployRequest is `oops deploy REV`, or `oops rollback --to REV`.
type DeployRequest struct {
	Rev    string // a SHA, a unique prefix, a tag, a branch, HEAD~N
	Reason string
	// Force deploys a release that is live or marked BAD, and switches
	// even if the health gate fails.
	Force, DryRun bool
	// NoSwitch installs on the off color and leaves traffic where it is.
	NoSwitch bool
	// NoWait (CodeDeploy) creates the deployment and returns its id.
	NoWait bool
	// Canary (ALB) is the percent of the traffic the release gets; 0: all.
	Canary int
	// CanarySteps are the shares it gets after Canary, in order (deploy
	// --canary 10,25,50,100: Canary 10, CanarySteps 25, 50, 100), each
	// baked before the next; a failed step sends all traffic back to the
	// color the canary started from.
	CanarySteps []int
	// Timeout bounds the install (0: the target's default); Verify is how
	// long the new color is watched after the switch (0: not watched).
	Timeout, Verify time.Duration
	// Bake is --bake: how long the new color is measured after the switch
	// (nil: bake from .oopsrc).
	Bake *time.Duration
	// Action and Command are what history and the lock record ("": deploy,
	// "oops deploy SHORT"); RollbackTo sets them.
	Action, Command string
	// Confirm is asked, under the lock, before anything changes (nil: go
	// ahead).
	Confirm func(question string) (bool, error)
	// AskStop is asked after Ctrl-C whether to stop the CodeDeploy
	// deployment deploy was waiting for; nil (no terminal): it keeps
	// running and the operator is told how to stop it.
	AskStop func(question string) (bool, error)
}

// DeployOutcome is what a deploy did, for the caller to report.
type DeployOutcome struct {
	Release release.Release
	Target  string // the target's name (t.String())
	// Before is the target as read before anything changed (under the
	// lock, unless AlreadyLive or DryRun).
	Before *target.State
	// AlreadyLive: the release takes the traffic already, nothing was done
	// (--force deploys it again).
	AlreadyLive bool
	// Warm: the off color already ran the release; it was not reinstalled.
	Warm bool
	// DeploymentID is the deployment --no-wait created (then nothing was
	// recorded or switched).
	DeploymentID string
	// Switch is the switch that sent traffic to the release (nil with
	// --no-switch, --no-wait, --dry-run).
	Switch *target.SwitchResult
	// Plan is --dry-run: the steps deploy would take, in order.
	Plan []string
	// Done: the deploy ran to its end. Deploy may still return an error
	// (the lock was lost after the last change, or the release awaits
	// approval): what it did is here.
	Done bool
	// Approval is the release's approval, when .oopsrc requires one: the
	// request it waits for (Deploy returns ErrAwaitingApproval), or the
	// approval used.
	Approval *Approval
}

// deployment is one deploy under way: what was resolved before the lock,
// and the outcome as it is filled in.
type deployment struct {
	req  DeployRequest
	idx  *store.Index
	rel  release.Release
	t    target.Target
	d    target.Deployer // nil when warm
	st   *target.State
	warm bool
	out  *DeployOutcome
}

// RollbackTo deploys an earlier release, recorded as a rollback so the
// release it leaves is marked BAD: a plain switch when the off color
// already runs it (warm), else installed on the off color first.
func (r *Runner) RollbackTo(ctx context.Context, req DeployRequest) (*DeployOutcome, error) {
	req.Action, req.Command = release.ActionRollback, "oops rollback --to "+req.Rev
	return r.Deploy(ctx, req)
}

// Deploy puts req.Rev's release on the off color and switches traffic to
// it: resolve and gate (before the lock), then under the lock read the
// target again, refuse a release marked BAD, confirm, install (marked
// installing until it passed), record its commit and switch, health-gated
// and verified. Every step that changes something uses the context Locked
// hands over, so a lost lock stops it.
func (r *Runner) Deploy(ctx context.Context, req DeployRequest) (*DeployOutcome, error) {
	if err := r.checkNoWait(req.NoWait); err != nil {
		return nil, err
	}
	dp, err := r.resolveDeploy(ctx, req)
	if err != nil || dp.out.AlreadyLive {
		return outcomeOf(dp), err
	}
	if !req.NoSwitch {
		// A bake that cannot be made is refused before anything is installed.
		bp, err := r.bakeFor(ctx, dp.t, req.Bake)
		if err != nil {
			return nil, err
		}
		if bp == nil && len(req.CanarySteps) > 0 {
			return nil, Usagef("--canary %d,%s bakes each step before the next: set bake in .oopsrc or pass --bake D", req.Canary, joinInts(req.CanarySteps))
		}
	}
	if req.DryRun {
		if err := r.checkBad(ctx, dp); err != nil {
			return nil, err
		}
		if err := r.checkRollbackTo(ctx, dp); err != nil {
			return nil, err
		}
		if err := r.planDeploy(ctx, dp); err != nil {
			return nil, err
		}
		return dp.out, nil
	}
	ch := Change{Action: dp.req.Action, Command: dp.req.Command, Reason: req.Reason}
	err = r.Locked(ctx, ch, func(ctx context.Context, ev *release.Event) error {
		return r.deployLocked(ctx, dp, ev)
	})
	if !dp.out.Done {
		return nil, err
	}
	return dp.out, err
}

func outcomeOf(dp *deployment) *DeployOutcome {
	if dp == nil {
		return nil
	}
	return dp.out
}

// checkNoWait rejects --no-wait where there is nothing to wait for
// separately: other targets install and health-check in one step.
func (r *Runner) checkNoWait(noWait bool) error {
	if _, err := r.d.Config(); err != nil || !noWait || r.d.UsesCodeDeploy() {
		return nil // a broken .oopsrc is reported by the command itself
	}
	return target.Hinted(Usagef("--no-wait only applies to deployments through CodeDeploy"),
		`CodeDeploy is used when .oopsrc names a load balancer and a "deployment-group"`)
}

// resolveDeploy is what deploy finds out before the lock: the release,
// the target and its state, whether it is live or warm already, and what
// installs it (refusing a deployer that lacks settings now).
func (r *Runner) resolveDeploy(ctx context.Context, req DeployRequest) (*deployment, error) {
	sha, err := r.d.Resolve(ctx, req.Rev)
	if err != nil {
		return nil, err
	}
	idx, err := r.d.Index(ctx)
	if err != nil {
		return nil, err
	}
	rel, err := idx.Get(ctx, sha)
	if errors.Is(err, release.ErrNotPublished) {
		return nil, r.notPublished(ctx, idx, sha, err)
	}
	if err != nil {
		return nil, err
	}
	t, err := r.d.DeployTarget(ctx, req.Canary)
	if err != nil {
		return nil, err
	}
	st, err := readDeployState(ctx, t)
	if err != nil {
		return nil, err
	}
	dp := &deployment{req: req, idx: idx, rel: rel, t: t, st: st,
		out: &DeployOutcome{Release: rel, Target: t.String(), Before: st}}
	if st.Live.Commit == sha && !req.Force {
		dp.out.AlreadyLive = true
		return dp, nil
	}
	if dp.req.Action == "" {
		dp.req.Action, dp.req.Command = release.ActionDeploy, "oops deploy "+rel.Short()
	}
	// Already on the off color, verified and not known to be unhealthy:
	// just switch. (An off color that is down, or whose install never
	// passed its health check, gets the release installed again.)
	dp.warm = st.Off.Commit == sha && !st.Off.Installing && (st.Off.Healthy == nil || *st.Off.Healthy)
	dp.out.Warm = dp.warm
	if !dp.warm {
		if dp.d, err = r.openDeployer(ctx, req.Force); err != nil {
			return nil, err
		}
	}
	return dp, nil
}

// readDeployState reads t, refusing while a canary is in progress.
func readDeployState(ctx context.Context, t target.Target) (*target.State, error) {
	st, err := t.State(ctx)
	if err == nil {
		err = noCanaryInProgress(t, st)
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// noCanaryInProgress refuses to deploy while traffic is split: the off
// color of a canary takes traffic.
func noCanaryInProgress(t target.Target, st *target.State) error {
	if st.Base == "" {
		return nil
	}
	to := st.Base.Other()
	return target.Hinted(fmt.Errorf("a canary is in progress on %s (%s has %d%% of the traffic): a deploy would replace a release that takes traffic", t, to, st.Color(to).Weight),
		"finish it with oops promote, or end it with oops rollback, then deploy")
}

// openDeployer opens what installs the release, refusing before the lock
// (before anything is marked or created) a deployer that lacks settings,
// and a CodeDeploy group that would pull both colors out of the load
// balancer (--force: a warning, when that is all it is).
func (r *Runner) openDeployer(ctx context.Context, force bool) (target.Deployer, error) {
	d, err := r.d.Deployer(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := d.(interface{ Preflight() error }); ok {
		if err := p.Preflight(); err != nil {
			c, _ := r.d.Config()
			return nil, &config.Error{Path: c.Path, Msg: err.Error(), Hint: "see .oopsrc.example and the README for the keys"}
		}
	}
	if g, ok := d.(interface{ CheckGroup(context.Context) error }); ok {
		if err := g.CheckGroup(ctx); err != nil {
			if !force || !errors.Is(err, codedeploy.ErrTrafficControl) && !errors.Is(err, codedeploy.ErrGroupUnchecked) {
				return nil, err
			}
			r.d.Report.Progressf("warning (--force): %v", err)
		}
	}
	return d, nil
}

// checkBad refuses a release rolled back from, unless --force; checked
// again under the lock, so the refusal is recorded in history.
func (r *Runner) checkBad(ctx context.Context, dp *deployment) error {
	if dp.req.Force {
		return nil
	}
	if err := r.Marks(ctx, dp.idx.Store(), dp.idx.App()).CheckBad(dp.rel.Commit); err != nil {
		return target.Hinted(err, fmt.Sprintf("if it has been fixed: %s --force; oops list shows the releases not marked BAD", dp.req.Command))
	}
	return nil
}

// deployLocked is the deploy under the lock: ctx carries its fence.
func (r *Runner) deployLocked(ctx context.Context, dp *deployment, ev *release.Event) error {
	ev.Target = dp.t.String()
	// Read again under the lock: someone may have switched meanwhile.
	st, err := readDeployState(ctx, dp.t)
	if err != nil {
		return err
	}
	dp.st, dp.out.Before = st, st
	ev.From = release.Side{Color: st.Live.Color, Commit: st.Live.Commit}
	ev.To = release.Side{Color: st.Off.Color, Commit: dp.rel.Commit}
	if err := r.checkBad(ctx, dp); err != nil {
		return err
	}
	if err := r.checkRollbackTo(ctx, dp); err != nil {
		return err
	}
	if err := r.confirmDeploy(dp); err != nil {
		return err
	}
	offURL := colorURL(st, st.Off.Color)
	if err := r.gateHook(ctx, StagePreDeploy, ev, offURL, dp.req.Force); err != nil {
		return err
	}
	if err := r.requestBeforeInstall(ctx, dp); err != nil {
		return err
	}
	if dp.warm {
		r.d.Report.Progressf("%s already runs on %s: switching without reinstalling", dp.rel.Short(), st.Off.Color)
	} else if err := r.install(ctx, dp, ev); err != nil || dp.out.DeploymentID != "" {
		return err
	} else if err := r.gateHook(ctx, StagePostInstall, ev, offURL, dp.req.Force); err != nil {
		// Installed, not switched: the off color keeps it for a look.
		return fmt.Errorf("%s is installed on %s, but traffic was not switched: %w", dp.rel.Short(), st.Off.Color, err)
	}
	approval, err := r.gateApproval(ctx, dp, ev)
	if err != nil {
		return err
	}
	if dp.req.NoSwitch {
		ev.NoSwitch = true
		dp.out.Done = true
		return nil
	}
	if err := r.switchDeployed(ctx, dp, ev); err != nil {
		return err
	}
	if approval != nil {
		r.useApproval(ctx, dp.rel.Commit)
	}
	return nil
}

// confirmDeploy asks the operator what deploy is about to do.
func (r *Runner) confirmDeploy(dp *deployment) error {
	if dp.req.Confirm == nil {
		return nil
	}
	short, off := dp.rel.Short(), dp.st.Off.Color
	what := fmt.Sprintf("Deploy %s to %s (off, %s) on %s", short, off, dp.st.Off.Where(), dp.t)
	if dp.warm {
		what = fmt.Sprintf("%s already runs on %s (off): switch %s to it", short, off, dp.t)
	} else if !dp.req.NoSwitch {
		what += " and switch traffic to it"
	}
	if c, err := r.d.Config(); err == nil && needsApproval(c, dp.req.Action) && !dp.req.NoSwitch {
		what += " (once approved: require-approval)"
	}
	ok, err := dp.req.Confirm(what + "?")
	if err != nil {
		return err
	}
	if !ok {
		return target.ErrAborted
	}
	return nil
}

// install puts the release on the off color: marked installing first,
// its commit recorded once it passed. With --no-wait it stops once the
// deployment is created (out.DeploymentID).
func (r *Runner) install(ctx context.Context, dp *deployment, ev *release.Event) error {
	short, off := dp.rel.Short(), dp.st.Off.Color
	user, host := r.d.Who()
	desc := fmt.Sprintf("oops deploy %s by %s@%s", short, user, host)
	if dp.req.Reason != "" {
		desc += ": " + dp.req.Reason
	}
	if err := markInstalling(ctx, dp.t, off, dp.rel.Commit); err != nil {
		return err
	}
	r.d.Report.Progressf("deploying %s to %s (%s) on %s", short, off, dp.st.Off.Where(), dp.t)
	dep, err := dp.d.Deploy(ctx, target.DeployRequest{
		Release: dp.rel, Color: off, Port: dp.st.Off.Port, Description: desc,
		Wait: !dp.req.NoWait, Timeout: dp.req.Timeout, Progress: r.d.Report.Progressf,
	})
	if dep != nil {
		ev.Deployment = dep.ID
	}
	if errors.Is(err, context.Canceled) && dep != nil {
		r.stopDeployment(ctx, dp.d, dep.ID, dp.req.AskStop)
	}
	if err == nil && dp.req.NoWait {
		dp.out.DeploymentID, dp.out.Done = dep.ID, true
		r.d.Report.Progressf("not waiting for deployment %s (--no-wait): nothing recorded or switched", dep.ID)
		return nil
	}
	if err != nil {
		if errors.Is(err, target.ErrNotStarted) {
			r.unmarkInstalling(ctx, dp)
		}
		return deployFailed(err, dp.rel)
	}
	if err := dp.t.SetCommit(ctx, off, dp.rel.Commit); err != nil {
		return fmt.Errorf("record commit %s on %s: %w", short, off, err)
	}
	return nil
}

// deployFailed is what a failed install returns. AWS refusing the call
// (permissions, missing group) keeps its own exit code; anything else is
// a failed deployment. An artifact that is not what was published is its
// own failure (exit 13), with what to do about it.
func deployFailed(err error, rel release.Release) error {
	if errors.Is(err, target.ErrIntegrity) {
		return target.Hinted(err, fmt.Sprintf("nothing was unpacked, stopped or switched; the store's copy of %s is not the published release: find out who changed it, then put the published bytes back (oops fsck --deep checks every release)", rel.Key))
	}
	if !errors.Is(err, target.ErrDeployFailed) && !errors.Is(err, context.Canceled) && !IsAWSError(err) {
		err = fmt.Errorf("%w: %w", target.ErrDeployFailed, err)
	}
	return err
}

// switchDeployed sends traffic to the off color that now runs the
// release: the switch of oops rollback (health gate, verification, switch
// back), with the share --canary asks for.
func (r *Runner) switchDeployed(ctx context.Context, dp *deployment, ev *release.Event) error {
	off := dp.st.Off.Color
	// Not r.SwitchOptions: the release was checked for BAD before it was
	// installed, and a target found half-switched now is reported, not
	// resumed behind the operator's back.
	bp, err := r.bakeFor(ctx, dp.t, dp.req.Bake)
	if err != nil {
		return err
	}
	res, err := target.Switch(ctx, dp.t, target.SwitchOptions{
		To: off, Weight: dp.req.Canary, Force: dp.req.Force, VerifyTimeout: dp.req.Verify, Logf: r.d.Report.Progressf,
		PreSwitch: func(ctx context.Context, st *target.State, p *target.Plan) error {
			return r.gateColor(ctx, ev, st, p, dp.req.Force)
		},
		Bake: r.bake(ev, bp.at(dp.req.Canary)),
	})
	if err == nil && len(dp.req.CanarySteps) > 0 {
		res, err = r.canarySteps(ctx, dp, ev, bp, res)
	}
	r.switchHooks(ctx, ev, res, err)
	if err != nil {
		if res == nil || !res.Switched {
			err = fmt.Errorf("%s is installed on %s, but traffic was not switched: %w", dp.rel.Short(), off, err)
		}
		return err
	}
	dp.out.Switch, dp.out.Done = res, true
	return nil
}

// canarySteps takes the canary that first got first.Plan.Weight percent
// through dp.req.CanarySteps, each a switch baked like the first (the
// health gate, smoke and hooks ran before the first). A step that fails
// its bake is switched back by target.Switch to the split before it; then
// all traffic goes back to the color the canary started from.
func (r *Runner) canarySteps(ctx context.Context, dp *deployment, ev *release.Event, bp *bakePlan, first *target.SwitchResult) (*target.SwitchResult, error) {
	base, off := dp.st.Live.Color, dp.st.Off.Color
	res := first
	for _, w := range dp.req.CanarySteps {
		r.d.Report.Progressf("canary step: %d%% of traffic to %s", w, off)
		step, err := target.Switch(ctx, dp.t, target.SwitchOptions{
			To: off, Weight: w, Force: true, VerifyTimeout: dp.req.Verify, Logf: r.d.Report.Progressf,
			Bake: r.bake(ev, bp.at(w)),
		})
		if step != nil && step.Plan != nil {
			res = &target.SwitchResult{Before: first.Before, Plan: step.Plan, Switched: true, Reverted: step.Reverted}
		}
		if err == nil {
			continue
		}
		if step == nil || !step.Reverted {
			return res, err
		}
		// Back to the base color, whole: the canary failed.
		if _, berr := target.Switch(context.WithoutCancel(ctx), dp.t, target.SwitchOptions{To: base, Force: true, Logf: r.d.Report.Progressf}); berr != nil {
			return res, fmt.Errorf("%w; sending all traffic back to %s failed: %v (run oops rollback)", err, base, berr)
		}
		return res, fmt.Errorf("%w; the canary stopped at %d%%: all traffic is back on %s", err, w, base)
	}
	return res, nil
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

// unmarkTimeout bounds unmarkInstalling's call.
const unmarkTimeout = 10 * time.Second

// unmarkInstalling gives the off color back the record it had before
// markInstalling, after an install that changed nothing there: it still
// runs what it ran, and status, list and a rollback must say so, not name
// a release that never reached it.
func (r *Runner) unmarkInstalling(ctx context.Context, dp *deployment) {
	ir, ok := dp.t.(target.InstallRecorder)
	if !ok {
		return
	}
	off := dp.st.Off
	was := ""
	if off.Installing {
		was = off.Commit // an earlier install that never finished: still unknown
	}
	// Also after Ctrl-C (the deployer's reads interrupted), but bounded:
	// the interrupt is used up, and a second one is caught by the same
	// handler, so an AWS call that hangs here would hang oops.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unmarkTimeout)
	defer cancel()
	if err := ir.SetInstalling(uctx, off.Color, was); err != nil {
		r.d.Report.Warnf("nothing changed on %s, but its record still says it installs %s (%v): oops status shows it installing until a deploy passes there", off.Color, dp.rel.Short(), err)
		return
	}
	runs := "what it ran before"
	if off.Commit != "" && !off.Installing {
		runs = release.Short(off.Commit)
	}
	r.d.Report.Progressf("nothing changed on %s: it still runs %s", off.Color, runs)
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
