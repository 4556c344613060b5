// Package codedeploy puts a release on the off color through AWS
// CodeDeploy: one deployment per release, whose revision is the release's
// S3 object, watched instance by instance until it succeeds, fails or
// times out. The instances' appspec hooks (oops hook ...) decide which
// color they install; this package never switches traffic.
package codedeploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// API is the part of the CodeDeploy client oops uses.
type API interface {
	CreateDeployment(ctx context.Context, in *codedeploy.CreateDeploymentInput, opts ...func(*codedeploy.Options)) (*codedeploy.CreateDeploymentOutput, error)
	GetDeployment(ctx context.Context, in *codedeploy.GetDeploymentInput, opts ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error)
	ListDeploymentTargets(ctx context.Context, in *codedeploy.ListDeploymentTargetsInput, opts ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentTargetsOutput, error)
	BatchGetDeploymentTargets(ctx context.Context, in *codedeploy.BatchGetDeploymentTargetsInput, opts ...func(*codedeploy.Options)) (*codedeploy.BatchGetDeploymentTargetsOutput, error)
	StopDeployment(ctx context.Context, in *codedeploy.StopDeploymentInput, opts ...func(*codedeploy.Options)) (*codedeploy.StopDeploymentOutput, error)
	GetDeploymentGroup(ctx context.Context, in *codedeploy.GetDeploymentGroupInput, opts ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentGroupOutput, error)
}

var _ API = (*codedeploy.Client)(nil)

// WatchedMarker ends the description of a deployment that `oops deploy`
// waits for. `oops hook switch` sees it and leaves the switch to that
// command, which holds the application's lock until the deployment ends
// (a hook that waited for the lock would wait for itself).
const WatchedMarker = "[watched by oops deploy]"

// DefaultPoll is how often a deployment's progress is read. CodeDeploy's
// lifecycle events take seconds each; the AWS CLI's waiter polls every 15s.
const DefaultPoll = 5 * time.Second

// batchSize is BatchGetDeploymentTargets' limit on target ids per call.
const batchSize = 25

// Deployer creates and watches CodeDeploy deployments of releases.
type Deployer struct {
	API         API
	Application string
	Group       string
	// Groups, when set, name one deployment group per color (a Route 53
	// target whose colors are separate stacks): a release goes to the
	// group of the color it is installed on, and Group is not used.
	Groups map[release.Color]string
	// Bucket holds the releases when DeployRequest.Bucket is empty.
	Bucket string
	// FullKey maps a release key to its S3 object key (the store's prefix
	// prepended); nil means the key is the object key.
	FullKey func(key string) string
	// Poll is the interval between progress reads (0: DefaultPoll).
	Poll time.Duration
}

var _ target.Deployer = (*Deployer)(nil)

// Deploy creates a deployment of req.Release to the deployment group and,
// when req.Wait is set, waits for it. The returned Deployment carries the
// deployment id whenever one was created, also with an error, so that an
// interrupted caller can stop it.
func (d *Deployer) Deploy(ctx context.Context, req target.DeployRequest) (*target.Deployment, error) {
	in, err := d.Input(req)
	if err != nil {
		return nil, target.NotStarted(err)
	}
	progress := req.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	var att target.Attempts
	out, err := d.API.CreateDeployment(ctx, in, func(o *codedeploy.Options) { o.APIOptions = append(o.APIOptions, att.Count) })
	if err != nil {
		if target.Refused(err, &att) {
			// AWS answered no: no deployment, nothing installed. (A call
			// that got no answer, or was retried, may have created one.)
			return nil, target.NotStarted(d.createError(err))
		}
		return nil, d.createError(err)
	}
	dep := &target.Deployment{ID: aws.ToString(out.DeploymentId), Status: string(types.DeploymentStatusCreated)}
	progress("created CodeDeploy deployment %s of %s to %s/%s (s3://%s/%s)", dep.ID, release.Short(req.Release.Commit),
		d.Application, d.GroupFor(req.Color), aws.ToString(in.Revision.S3Location.Bucket), aws.ToString(in.Revision.S3Location.Key))
	if !req.Wait {
		return dep, nil
	}
	return d.Wait(ctx, dep.ID, req.Timeout, progress)
}

// Input is the CreateDeployment call Deploy makes for req; --dry-run
// prints it. An artifact CodeDeploy cannot unpack is an error here, before
// anything is created.
func (d *Deployer) Input(req target.DeployRequest) (*codedeploy.CreateDeploymentInput, error) {
	group := d.GroupFor(req.Color)
	if d.Application == "" || group == "" {
		if d.Groups != nil {
			return nil, fmt.Errorf("create deployment: %w: no deployment group for %q: set application-name, blue-deployment-group and green-deployment-group in .oopsrc", target.ErrMisconfigured, req.Color)
		}
		return nil, fmt.Errorf("create deployment: %w: application-name and deployment-group must both be set in .oopsrc", target.ErrMisconfigured)
	}
	bucket := req.Bucket
	if bucket == "" {
		bucket = d.Bucket
	}
	if bucket == "" {
		return nil, fmt.Errorf("create deployment: %w: CodeDeploy reads releases from S3, but the store is not an S3 bucket (set \"s3-bucket\" or an s3:// \"store\" in .oopsrc)", target.ErrMisconfigured)
	}
	key := req.Release.Key
	if key == "" {
		return nil, fmt.Errorf("create deployment of %s: the release has no artifact key", release.Short(req.Release.Commit))
	}
	bundle := release.BundleType(key)
	if bundle == "" {
		return nil, fmt.Errorf("create deployment of %s: CodeDeploy cannot unpack %s: bundles must end in .zip, .tar.gz or .tgz", release.Short(req.Release.Commit), key)
	}
	if d.FullKey != nil {
		key = d.FullKey(key)
	}
	desc := strings.TrimSpace(req.Description)
	if req.Wait {
		desc = strings.TrimSpace(desc + " " + WatchedMarker)
	}
	loc := &types.S3Location{
		Bucket:     aws.String(bucket),
		Key:        aws.String(key),
		BundleType: types.BundleType(bundle),
	}
	// S3 quotes ETags; CodeDeploy compares the bare value.
	if etag := strings.Trim(req.Release.ETag, `"`); etag != "" {
		loc.ETag = aws.String(etag)
	}
	return &codedeploy.CreateDeploymentInput{
		ApplicationName:     aws.String(d.Application),
		DeploymentGroupName: aws.String(group),
		Description:         aws.String(desc),
		Revision: &types.RevisionLocation{
			RevisionType: types.RevisionLocationTypeS3,
			S3Location:   loc,
		},
	}, nil
}

// GroupFor is the deployment group that installs on color c: Groups[c]
// when Groups is set, else Group (the colors share the instances).
func (d *Deployer) GroupFor(c release.Color) string {
	if d.Groups != nil {
		return d.Groups[c]
	}
	return d.Group
}

func (d *Deployer) createError(err error) error {
	var limit *types.DeploymentLimitExceededException
	if errors.As(err, &limit) {
		return fmt.Errorf("create deployment in %s/%s: %w (another deployment is still running in this group: wait for it, or stop it with `aws deploy stop-deployment`)", d.Application, d.Group, err)
	}
	return fmt.Errorf("create deployment in %s/%s: %w", d.Application, d.Group, err)
}

// Stop asks CodeDeploy to stop a deployment. Instances that already ran
// their hooks keep what they installed, on the off color, without traffic.
func (d *Deployer) Stop(ctx context.Context, id string) (string, error) {
	out, err := d.API.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("stop deployment %s: %w", id, err)
	}
	msg := string(out.Status)
	if m := aws.ToString(out.StatusMessage); m != "" {
		msg += ": " + m
	}
	return msg, nil
}

// Wait watches deployment id until it ends or timeout (0: no limit)
// passes, reporting each instance's lifecycle events as they change. A
// failed or stopped deployment is a *FailedError wrapping
// target.ErrDeployFailed, after its diagnostics went to progress.
func (d *Deployer) Wait(ctx context.Context, id string, timeout time.Duration, progress func(string, ...any)) (*target.Deployment, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	dep := &target.Deployment{ID: id}
	wctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	poll := d.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	w := &watcher{d: d, id: id, progress: progress, seen: map[string]string{}, done: map[string]types.InstanceTarget{}}
	for {
		info, err := d.get(wctx, id)
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				return dep, d.timeoutError(id, dep.Status, timeout)
			}
			return dep, err
		}
		dep.Status = string(info.Status)
		w.report(wctx, info)
		switch info.Status {
		case types.DeploymentStatusSucceeded, types.DeploymentStatusReady:
			progress("deployment %s succeeded", id)
			return dep, nil
		case types.DeploymentStatusFailed, types.DeploymentStatusStopped:
			// Read the final diagnostics even if our deadline just passed.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			fe := w.failure(fctx, info)
			cancel()
			for _, line := range strings.Split(strings.TrimRight(fe.Report(), "\n"), "\n") {
				progress("%s", line)
			}
			return dep, fe
		}
		select {
		case <-wctx.Done():
			if ctx.Err() == nil {
				return dep, d.timeoutError(id, dep.Status, timeout)
			}
			return dep, fmt.Errorf("wait for deployment %s: %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}

func (d *Deployer) timeoutError(id, status string, timeout time.Duration) error {
	if status == "" {
		status = "unknown"
	}
	return fmt.Errorf("%w: deployment %s did not finish within %s (last status %s); it keeps running: watch it in the CodeDeploy console, or stop it with `aws deploy stop-deployment --deployment-id %s`",
		target.ErrDeployFailed, id, timeout, status, id)
}

func (d *Deployer) get(ctx context.Context, id string) (*types.DeploymentInfo, error) {
	out, err := d.API.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("read deployment %s: %w", id, err)
	}
	if out.DeploymentInfo == nil {
		return nil, fmt.Errorf("read deployment %s: CodeDeploy returned no deployment", id)
	}
	return out.DeploymentInfo, nil
}

// Info reads one deployment (for `oops hook`).
func (d *Deployer) Info(ctx context.Context, id string) (*types.DeploymentInfo, error) {
	return d.get(ctx, id)
}

// CommitOf returns the commit whose release a deployment installs, from
// its revision's S3 key; "" when the revision is not an oops release.
func CommitOf(app string, info *types.DeploymentInfo) string {
	if info == nil || info.Revision == nil || info.Revision.S3Location == nil {
		return ""
	}
	key := aws.ToString(info.Revision.S3Location.Key)
	// The store may prefix keys: match the release layout at the end.
	if i := strings.LastIndex(key, release.Prefix(app)); i >= 0 {
		if sha, _, ok := release.ParseKey(app, key[i:]); ok {
			return sha
		}
	}
	return ""
}
