package codedeploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

// script is a fake CodeDeploy whose deployment goes through the given
// reads: each GetDeployment answers the next step (the last one repeats).
type script struct {
	mu      sync.Mutex
	steps   []step
	i       int
	created []*codedeploy.CreateDeploymentInput
	stopped []string
	batches [][]string
	// listErr fails ListDeploymentTargets (a role without the permission).
	listErr error
	// createErr fails CreateDeployment.
	createErr error
}

type step struct {
	status    types.DeploymentStatus
	overview  *types.DeploymentOverview
	errInfo   *types.ErrorInformation
	instances []types.InstanceTarget
}

func (s *script) cur() step {
	return s.steps[min(s.i, len(s.steps)-1)]
}

func (s *script) CreateDeployment(_ context.Context, in *codedeploy.CreateDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.CreateDeploymentOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.createErr != nil {
		return nil, s.createErr
	}
	s.created = append(s.created, in)
	return &codedeploy.CreateDeploymentOutput{DeploymentId: aws.String("d-TEST")}, nil
}

func (s *script) GetDeployment(_ context.Context, in *codedeploy.GetDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.cur()
	s.i++
	return &codedeploy.GetDeploymentOutput{DeploymentInfo: &types.DeploymentInfo{
		DeploymentId: in.DeploymentId, Status: st.status, DeploymentOverview: st.overview, ErrorInformation: st.errInfo,
	}}, nil
}

// last is the step the latest GetDeployment answered.
func (s *script) last() step { return s.steps[min(max(s.i-1, 0), len(s.steps)-1)] }

func (s *script) ListDeploymentTargets(_ context.Context, in *codedeploy.ListDeploymentTargetsInput, _ ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentTargetsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listErr != nil {
		return nil, s.listErr
	}
	var ids []string
	for _, t := range s.last().instances {
		ids = append(ids, aws.ToString(t.TargetId))
	}
	// Two pages, to exercise NextToken.
	half := len(ids) / 2
	if in.NextToken == nil && half > 0 {
		return &codedeploy.ListDeploymentTargetsOutput{TargetIds: ids[:half], NextToken: aws.String("p2")}, nil
	}
	if in.NextToken != nil {
		return &codedeploy.ListDeploymentTargetsOutput{TargetIds: ids[half:]}, nil
	}
	return &codedeploy.ListDeploymentTargetsOutput{TargetIds: ids}, nil
}

func (s *script) BatchGetDeploymentTargets(_ context.Context, in *codedeploy.BatchGetDeploymentTargetsInput, _ ...func(*codedeploy.Options)) (*codedeploy.BatchGetDeploymentTargetsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(in.TargetIds) > batchSize {
		return nil, fmt.Errorf("BatchGetDeploymentTargets: %d ids, limit is %d", len(in.TargetIds), batchSize)
	}
	s.batches = append(s.batches, append([]string(nil), in.TargetIds...))
	out := &codedeploy.BatchGetDeploymentTargetsOutput{}
	for _, id := range in.TargetIds {
		for _, t := range s.last().instances {
			if aws.ToString(t.TargetId) == id {
				out.DeploymentTargets = append(out.DeploymentTargets, types.DeploymentTarget{DeploymentTargetType: types.DeploymentTargetTypeInstanceTarget, InstanceTarget: &t})
			}
		}
	}
	return out, nil
}

func (s *script) StopDeployment(_ context.Context, in *codedeploy.StopDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.StopDeploymentOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = append(s.stopped, aws.ToString(in.DeploymentId))
	return &codedeploy.StopDeploymentOutput{Status: types.StopStatusPending, StatusMessage: aws.String("stopping")}, nil
}

var _ API = (*script)(nil)

func inst(id string, status types.TargetStatus, events ...types.LifecycleEvent) types.InstanceTarget {
	return types.InstanceTarget{TargetId: aws.String(id), Status: status, LifecycleEvents: events}
}

func ev(name string, status types.LifecycleEventStatus) types.LifecycleEvent {
	return types.LifecycleEvent{LifecycleEventName: aws.String(name), Status: status}
}

func failedEv(name, code, scriptName, msg, tail string) types.LifecycleEvent {
	e := ev(name, types.LifecycleEventStatusFailed)
	e.Diagnostics = &types.Diagnostics{ErrorCode: types.LifecycleErrorCode(code), ScriptName: aws.String(scriptName), Message: aws.String(msg), LogTail: aws.String(tail)}
	return e
}

func request(wait bool) target.DeployRequest {
	return target.DeployRequest{
		Release:     release.Release{Commit: sha, App: "web", Key: release.Key("web", sha, ".zip"), ETag: `"9b2cf535f27731c974343645a3985328"`},
		Color:       release.Green,
		Port:        8002,
		Description: "oops deploy 0123456 by alice: fix login",
		Wait:        wait,
	}
}

type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, fmt.Sprintf(format, args...))
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.l, "\n")
}

func TestInputIsTheReleaseObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		key        string
		bucket     string
		fullKey    func(string) string
		wantKey    string
		wantBundle types.BundleType
		wantErr    string
	}{
		{name: "zip", key: release.Key("web", sha, ".zip"), bucket: "rel", wantKey: "web/web-" + sha + ".zip", wantBundle: types.BundleTypeZip},
		{name: "tar.gz", key: release.Key("web", sha, ".tar.gz"), bucket: "rel", wantKey: "web/web-" + sha + ".tar.gz", wantBundle: types.BundleTypeTarGZip},
		{name: "tgz", key: release.Key("web", sha, ".tgz"), bucket: "rel", wantKey: "web/web-" + sha + ".tgz", wantBundle: types.BundleTypeTarGZip},
		{name: "store prefix", key: release.Key("web", sha, ".zip"), bucket: "rel", fullKey: func(k string) string { return "team/" + k }, wantKey: "team/web/web-" + sha + ".zip", wantBundle: types.BundleTypeZip},
		{name: "not a bundle", key: "web/web-" + sha + ".jar", bucket: "rel", wantErr: "cannot unpack"},
		{name: "no bucket", key: release.Key("web", sha, ".zip"), wantErr: "not an S3 bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &Deployer{Application: "web", Group: "prod", Bucket: tt.bucket, FullKey: tt.fullKey}
			req := request(true)
			req.Release.Key = tt.key
			in, err := d.Input(req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Input error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			loc := in.Revision.S3Location
			if got := aws.ToString(loc.Key); got != tt.wantKey {
				t.Errorf("key = %q, want %q", got, tt.wantKey)
			}
			if loc.BundleType != tt.wantBundle {
				t.Errorf("bundle = %q, want %q", loc.BundleType, tt.wantBundle)
			}
			if got := aws.ToString(loc.ETag); got != "9b2cf535f27731c974343645a3985328" {
				t.Errorf("eTag = %q, want it unquoted", got)
			}
			if got := aws.ToString(in.Description); !strings.HasPrefix(got, req.Description) || !strings.HasSuffix(got, WatchedMarker) {
				t.Errorf("description = %q, want the request's then %q", got, WatchedMarker)
			}
		})
	}
}

// Only a CreateDeployment AWS answered with an error is known to have
// created nothing (ErrNotStarted: the workflow gives the color back its
// record); one that got no answer may have created a deployment.
func TestCreateRefusedIsNotStarted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"AWS refused", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not allowed"}, true},
		{"no answer", errors.New("read tcp: connection reset by peer"), false},
		// The SDK retried (the first attempt's answer lost, then
		// throttled): the first attempt may have created a deployment.
		{"retried, then refused", &retry.MaxAttemptsError{Attempt: 3, Err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}, false},
		// A server error may come after the deployment was created.
		{"server error", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}}, Err: &smithy.GenericAPIError{Code: "ServiceUnavailable"}}, false},
		{"AWS refused, status known", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}}, Err: &types.DeploymentGroupDoesNotExistException{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Deployer{API: &script{createErr: tt.err}, Application: "web", Group: "prod", Bucket: "rel"}
			_, err := d.Deploy(context.Background(), request(true))
			if err == nil || errors.Is(err, target.ErrNotStarted) != tt.want {
				t.Errorf("Deploy = %v; ErrNotStarted %v, want %v", err, errors.Is(err, target.ErrNotStarted), tt.want)
			}
		})
	}
}

func TestNoWaitDescriptionHasNoMarker(t *testing.T) {
	t.Parallel()
	d := &Deployer{Application: "web", Group: "prod", Bucket: "rel"}
	in, err := d.Input(request(false))
	if err != nil {
		t.Fatal(err)
	}
	// Without the marker, `oops hook switch` on the instance does the switch.
	if strings.Contains(aws.ToString(in.Description), WatchedMarker) {
		t.Errorf("--no-wait description %q carries the watched marker", aws.ToString(in.Description))
	}
}

func TestWaitReportsEachInstanceUntilSuccess(t *testing.T) {
	t.Parallel()
	api := &script{steps: []step{
		{status: types.DeploymentStatusCreated},
		{status: types.DeploymentStatusInProgress, overview: &types.DeploymentOverview{InProgress: 1, Pending: 1}, instances: []types.InstanceTarget{
			inst("i-1", types.TargetStatusInProgress, ev("BeforeInstall", types.LifecycleEventStatusSucceeded), ev("AfterInstall", types.LifecycleEventStatusInProgress), ev("ApplicationStart", types.LifecycleEventStatusPending)),
			inst("i-2", types.TargetStatusPending, ev("BeforeInstall", types.LifecycleEventStatusPending)),
		}},
		{status: types.DeploymentStatusInProgress, overview: &types.DeploymentOverview{Succeeded: 1, InProgress: 1}, instances: []types.InstanceTarget{
			inst("i-1", types.TargetStatusSucceeded, ev("AfterInstall", types.LifecycleEventStatusSucceeded), ev("ApplicationStart", types.LifecycleEventStatusSucceeded)),
			inst("i-2", types.TargetStatusInProgress, ev("BeforeInstall", types.LifecycleEventStatusInProgress)),
		}},
		{status: types.DeploymentStatusSucceeded, overview: &types.DeploymentOverview{Succeeded: 2}, instances: []types.InstanceTarget{
			inst("i-1", types.TargetStatusSucceeded, ev("AfterInstall", types.LifecycleEventStatusSucceeded), ev("ApplicationStart", types.LifecycleEventStatusSucceeded)),
			inst("i-2", types.TargetStatusSucceeded, ev("ApplicationStart", types.LifecycleEventStatusSucceeded)),
		}},
	}}
	d := &Deployer{API: api, Application: "web", Group: "prod", Bucket: "rel", Poll: time.Millisecond}
	var out lines
	req := request(true)
	req.Progress = out.add
	dep, err := d.Deploy(context.Background(), req)
	if err != nil {
		t.Fatalf("Deploy: %v\n%s", err, out.String())
	}
	if dep.ID != "d-TEST" || dep.Status != "Succeeded" {
		t.Errorf("deployment = %+v, want d-TEST Succeeded", dep)
	}
	got := out.String()
	for _, want := range []string{
		"created CodeDeploy deployment d-TEST",
		"deployment d-TEST: InProgress (instances: 1 in progress, 1 pending)",
		"  i-1: InProgress, AfterInstall InProgress",
		"  i-2: Pending",
		"  i-1: Succeeded, ApplicationStart Succeeded",
		"  i-2: InProgress, BeforeInstall InProgress",
		"  i-2: Succeeded, ApplicationStart Succeeded",
		"deployment d-TEST succeeded",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("progress lacks %q:\n%s", want, got)
		}
	}
	// Unchanged instances are not repeated: i-1 finished once.
	if n := strings.Count(got, "i-1: Succeeded"); n != 1 {
		t.Errorf("i-1's success printed %d times, want once:\n%s", n, got)
	}
	// A finished instance is not read again.
	for _, b := range api.batches[2:] {
		for _, id := range b {
			if id == "i-1" {
				t.Errorf("finished instance i-1 read again in batch %v", b)
			}
		}
	}
}

func TestWaitFailureHasDiagnostics(t *testing.T) {
	t.Parallel()
	api := &script{steps: []step{
		{status: types.DeploymentStatusFailed,
			errInfo: &types.ErrorInformation{Code: types.ErrorCodeHealthConstraints, Message: aws.String("The overall deployment failed because too many individual instances failed deployment")},
			instances: []types.InstanceTarget{
				inst("i-ok", types.TargetStatusSucceeded, ev("ApplicationStart", types.LifecycleEventStatusSucceeded)),
				inst("i-bad", types.TargetStatusFailed,
					ev("AfterInstall", types.LifecycleEventStatusSucceeded),
					failedEv("ApplicationStart", "ScriptFailed", "deploy/start.sh", "Script at specified location: deploy/start.sh run as user root failed with exit code 1", "[stdout]starting green on 8002\n[stderr]port 8002 already in use\n"),
					ev("ValidateService", types.LifecycleEventStatusSkipped)),
			}},
	}}
	d := &Deployer{API: api, Application: "web", Group: "prod", Bucket: "rel", Poll: time.Millisecond}
	var out lines
	req := request(true)
	req.Progress = out.add
	dep, err := d.Deploy(context.Background(), req)
	if !errors.Is(err, target.ErrDeployFailed) {
		t.Fatalf("Deploy error = %v, want ErrDeployFailed", err)
	}
	var fe *FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("error %T is not a *FailedError", err)
	}
	if dep == nil || dep.ID != "d-TEST" || dep.Status != "Failed" {
		t.Errorf("deployment = %+v, want d-TEST Failed", dep)
	}
	if want := "deployment d-TEST failed: i-bad failed in ApplicationStart (ScriptFailed, deploy/start.sh); traffic was not switched"; err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err.Error(), want)
	}
	got := out.String()
	for _, want := range []string{
		"deployment d-TEST: Failed: HEALTH_CONSTRAINTS The overall deployment failed",
		"failed instance: i-bad",
		"lifecycle event: ApplicationStart",
		"error code:      ScriptFailed",
		"script:          deploy/start.sh",
		"failed with exit code 1",
		"    [stderr]port 8002 already in use",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "failed instance: i-ok") {
		t.Errorf("diagnostics blame the instance that succeeded:\n%s", got)
	}
}

func TestWaitWithoutInstancePermission(t *testing.T) {
	t.Parallel()
	api := &script{listErr: errors.New("AccessDeniedException: not authorized to perform codedeploy:ListDeploymentTargets"), steps: []step{
		{status: types.DeploymentStatusInProgress},
		{status: types.DeploymentStatusFailed, errInfo: &types.ErrorInformation{Code: types.ErrorCodeTimeout, Message: aws.String("deployment timed out")}},
	}}
	d := &Deployer{API: api, Application: "web", Group: "prod", Bucket: "rel", Poll: time.Millisecond}
	var out lines
	req := request(true)
	req.Progress = out.add
	_, err := d.Deploy(context.Background(), req)
	if !errors.Is(err, target.ErrDeployFailed) {
		t.Fatalf("Deploy error = %v, want ErrDeployFailed", err)
	}
	if want := "deployment d-TEST failed: TIMEOUT"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want prefix %q", err, want)
	}
	got := out.String()
	if n := strings.Count(got, "per-instance progress unavailable"); n != 1 {
		t.Errorf("permission problem reported %d times, want once:\n%s", n, got)
	}
	if !strings.Contains(got, "instance diagnostics unavailable: list instances of deployment d-TEST: AccessDenied") {
		t.Errorf("diagnostics do not say why instances are missing:\n%s", got)
	}
}

func TestWaitTimeoutLeavesDeploymentRunning(t *testing.T) {
	t.Parallel()
	api := &script{steps: []step{{status: types.DeploymentStatusInProgress}}}
	d := &Deployer{API: api, Application: "web", Group: "prod", Bucket: "rel", Poll: time.Millisecond}
	req := request(true)
	req.Timeout = 30 * time.Millisecond
	dep, err := d.Deploy(context.Background(), req)
	if !errors.Is(err, target.ErrDeployFailed) || !strings.Contains(err.Error(), "did not finish within 30ms (last status InProgress)") {
		t.Fatalf("Deploy error = %v, want a timeout naming the last status", err)
	}
	if dep == nil || dep.ID != "d-TEST" {
		t.Fatalf("deployment = %+v, want its id", dep)
	}
	if len(api.stopped) != 0 {
		t.Errorf("a timeout stopped the deployment: %v", api.stopped)
	}
}

func TestWaitInterruptedKeepsID(t *testing.T) {
	t.Parallel()
	api := &script{steps: []step{{status: types.DeploymentStatusInProgress}}}
	d := &Deployer{API: api, Application: "web", Group: "prod", Bucket: "rel", Poll: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	req := request(true)
	req.Progress = func(format string, args ...any) {
		if strings.HasPrefix(format, "deployment %s: %s") {
			cancel() // Ctrl-C once the deployment is running
		}
	}
	dep, err := d.Deploy(ctx, req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deploy error = %v, want context.Canceled", err)
	}
	if dep == nil || dep.ID != "d-TEST" {
		t.Fatalf("deployment = %+v, want its id so that it can be stopped", dep)
	}
	msg, err := d.Stop(context.Background(), dep.ID)
	if err != nil || msg != "Pending: stopping" {
		t.Fatalf("Stop = %q, %v", msg, err)
	}
	if len(api.stopped) != 1 || api.stopped[0] != "d-TEST" {
		t.Errorf("stopped %v, want [d-TEST]", api.stopped)
	}
}

func TestManyInstancesAreReadInBatches(t *testing.T) {
	t.Parallel()
	var many []types.InstanceTarget
	for i := range 60 {
		many = append(many, inst(fmt.Sprintf("i-%02d", i), types.TargetStatusSucceeded, ev("ApplicationStart", types.LifecycleEventStatusSucceeded)))
	}
	api := &script{steps: []step{{status: types.DeploymentStatusSucceeded, instances: many}}}
	d := &Deployer{API: api, Application: "web", Group: "prod", Bucket: "rel", Poll: time.Millisecond}
	var out lines
	req := request(true)
	req.Progress = out.add
	if _, err := d.Deploy(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if len(api.batches) != 3 {
		t.Errorf("%d BatchGetDeploymentTargets calls for 60 instances, want 3", len(api.batches))
	}
	if n := strings.Count(out.String(), ": Succeeded, ApplicationStart Succeeded"); n != 60 {
		t.Errorf("%d instances reported, want 60", n)
	}
}

func TestCommitOf(t *testing.T) {
	t.Parallel()
	info := func(key string) *types.DeploymentInfo {
		return &types.DeploymentInfo{Revision: &types.RevisionLocation{S3Location: &types.S3Location{Key: aws.String(key)}}}
	}
	tests := []struct {
		name string
		info *types.DeploymentInfo
		want string
	}{
		{"release key", info("web/web-" + sha + ".zip"), sha},
		{"prefixed store", info("team/web/web-" + sha + ".tgz"), sha},
		{"other app", info("api/api-" + sha + ".zip"), ""},
		{"not a release", info("web/latest.zip"), ""},
		{"github revision", &types.DeploymentInfo{Revision: &types.RevisionLocation{}}, ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		if got := CommitOf("web", tt.info); got != tt.want {
			t.Errorf("%s: CommitOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// GetDeploymentGroup: a group without a load balancer.
func (s *script) GetDeploymentGroup(_ context.Context, in *codedeploy.GetDeploymentGroupInput, _ ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentGroupOutput, error) {
	return &codedeploy.GetDeploymentGroupOutput{DeploymentGroupInfo: &types.DeploymentGroupInfo{DeploymentGroupName: in.DeploymentGroupName}}, nil
}

// TestGroupPerColor: with a deployment group per color (the dns target's
// stacks), a release goes to the group of the color it is installed on,
// and no group's load balancer setting is refused (it holds one color).
func TestGroupPerColor(t *testing.T) {
	t.Parallel()
	d := &Deployer{Application: "web", Bucket: "rel", Groups: map[release.Color]string{release.Blue: "web-blue", release.Green: "web-green"}}
	for _, c := range []release.Color{release.Blue, release.Green} {
		req := request(true)
		req.Color = c
		in, err := d.Input(req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := aws.ToString(in.DeploymentGroupName), "web-"+string(c); got != want {
			t.Errorf("%s: group %q, want %q", c, got, want)
		}
	}
	req := request(true)
	req.Color = ""
	if _, err := d.Input(req); err == nil || !strings.Contains(err.Error(), "blue-deployment-group and green-deployment-group") {
		t.Errorf("Input without a color: %v", err)
	}
	if err := d.CheckGroup(context.Background()); err != nil {
		t.Errorf("CheckGroup with a group per color: %v", err)
	}
}
