package workflow

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
)

// planDeploy is --dry-run: what deploy would do, step by step, in
// out.Plan. Nothing is changed.
func (r *Runner) planDeploy(ctx context.Context, dp *deployment) error {
	st, off, rel := dp.st, dp.st.Off.Color, dp.rel
	var steps []string
	step := func(format string, args ...any) { steps = append(steps, fmt.Sprintf(format, args...)) }
	if dp.warm {
		step("%s already runs on %s: nothing to install", rel.Short(), off)
	} else {
		if _, ok := dp.t.(target.InstallRecorder); ok {
			step("record %s as installing (unverified) on %s", rel.Commit, off)
		}
		step("%s", installStep(dp.d, rel, off, st.Off.Port, dp.req.NoWait))
		if dp.req.NoWait {
			dp.out.Plan = steps
			return nil
		}
		step("record commit %s on %s", rel.Commit, off)
	}
	if c, err := r.d.Config(); err == nil && needsApproval(c, dp.req.Action) {
		s, err := r.d.Store(ctx)
		if err != nil {
			return err
		}
		a, _, err := readApproval(ctx, s, c.ApplicationName, rel.Commit)
		switch {
		case err != nil:
			return err
		case a != nil && a.Approved():
			step("%s was approved by %s: go on to the switch (require-approval)", rel.Short(), a.ApprovedBy)
		case !dp.req.NoSwitch:
			step("ask for approval and stop here, traffic on %s, until someone else runs oops approve %s (require-approval)", st.Live.Color, rel.Short())
			dp.out.Plan = steps
			return nil
		}
	}
	if dp.req.NoSwitch {
		step("leave traffic on %s (--no-switch)", st.Live.Color)
		dp.out.Plan = steps
		return nil
	}
	if !dp.req.Force {
		step("check the health of %s", off)
	}
	weight := 100
	if dp.req.Canary > 0 {
		weight = dp.req.Canary
	}
	pctx := ctx
	if !dp.warm {
		pctx = target.AfterInstall(ctx, off)
	}
	p, err := dp.t.Plan(pctx, st, off, weight)
	if err != nil {
		return err
	}
	dp.out.Plan = append(steps, p.Steps...)
	return nil
}

// installStep is the --dry-run line for installing rel on color off: for
// CodeDeploy, the exact deployment that would be created.
func installStep(d target.Deployer, rel release.Release, off release.Color, port int, noWait bool) string {
	generic := fmt.Sprintf("install %s on %s (port %d) and wait until it is healthy", rel.Key, off, port)
	if port == 0 { // a color that is a stack of its own (the dns target)
		generic = fmt.Sprintf("install %s on %s and wait until it is done", rel.Key, off)
	}
	if sd, ok := d.(target.StepDescriber); ok {
		return sd.DeployStep(target.DeployRequest{Release: rel, Color: off, Port: port})
	}
	cd, ok := d.(*codedeploy.Deployer)
	if !ok {
		return generic
	}
	in, err := cd.Input(target.DeployRequest{Release: rel, Color: off, Port: port})
	if err != nil {
		return generic + " (" + err.Error() + ")"
	}
	loc := in.Revision.S3Location
	step := fmt.Sprintf("create a CodeDeploy deployment in %s/%s of s3://%s/%s (%s", cd.Application, cd.GroupFor(off),
		aws.ToString(loc.Bucket), aws.ToString(loc.Key), loc.BundleType)
	if loc.ETag != nil {
		step += ", ETag " + aws.ToString(loc.ETag)
	}
	if cd.Groups != nil {
		step += "); it installs it on the " + string(off) + " stack"
	} else {
		where := fmt.Sprintf("%s (port %d)", off, port)
		if port == 0 { // an ALB: the hooks read the port of the color's target group
			where = fmt.Sprintf("%s (the port of its target group)", off)
		}
		step += "); its hooks install it on " + where
	}
	if noWait {
		return step + "; print its id and stop there (--no-wait)"
	}
	return step + "; wait until it succeeds"
}

// stopDeployment is what deploy does after Ctrl-C: ask (ask) whether to
// stop the CodeDeploy deployment it was waiting for. Without a terminal
// (ask nil) it leaves the deployment running (the off color takes no
// traffic) and says how to stop it.
func (r *Runner) stopDeployment(ctx context.Context, d target.Deployer, id string, ask func(string) (bool, error)) {
	cd, ok := d.(*codedeploy.Deployer)
	if !ok || id == "" {
		return
	}
	// The command's context is cancelled: stopping needs its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	how := fmt.Sprintf("aws deploy stop-deployment --deployment-id %s", id)
	if ask == nil {
		r.d.Report.Progressf("interrupted: deployment %s keeps running on the off color (no traffic); stop it with: %s", id, how)
		return
	}
	yes, err := ask(fmt.Sprintf("\ninterrupted: stop CodeDeploy deployment %s?", id))
	if err != nil || !yes {
		r.d.Report.Progressf("deployment %s keeps running on the off color (no traffic); stop it later with: %s", id, how)
		return
	}
	msg, err := cd.Stop(ctx, id)
	if err != nil {
		r.warnf("%v", err)
		return
	}
	r.d.Report.Progressf("stopping deployment %s: %s", id, msg)
}

// notPublished says that sha has no release and lists the published ones
// nearest to it in commit time (the newest when git does not know sha).
func (r *Runner) notPublished(ctx context.Context, idx *store.Index, sha string, cause error) error {
	rels, err := idx.List(ctx, 0)
	if err != nil || len(rels) == 0 {
		return target.Hinted(cause, "publish it first: oops publish FILE --commit "+release.Short(sha))
	}
	var at time.Time
	if wd, err := r.d.WorkDir(); err == nil {
		if info, err := release.CommitInfo(wd, sha); err == nil {
			at = info.Time
		}
	}
	if !at.IsZero() {
		sortNearest(rels, at)
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
	return target.Hinted(cause, b.String())
}

// sortNearest orders rels by how far their commit (else their
// publication) is from at, nearest first.
func sortNearest(rels []release.Release, at time.Time) {
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

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
