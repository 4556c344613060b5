package codedeploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// moto is shared by the package's tests; each test uses its own names.
var (
	moto    *awstest.Moto
	motoErr error
	seq     atomic.Int64
)

func TestMain(m *testing.M) {
	moto, motoErr = awstest.StartServer()
	code := m.Run()
	if moto != nil {
		moto.Stop()
	}
	os.Exit(code)
}

func needMoto(t *testing.T) *awstest.Moto {
	t.Helper()
	if motoErr != nil {
		awstest.Unavailable(t, motoErr)
	}
	return moto
}

// fixture is a CodeDeploy application and group, and a published
// artifact, on moto.
type fixture struct {
	app, group, bucket string
	rel                release.Release
}

func newFixture(t *testing.T, m *awstest.Moto) fixture {
	t.Helper()
	ctx := awstest.Ctx(t)
	n := seq.Add(1)
	fx := fixture{app: fmt.Sprintf("web%d", n), group: "prod", bucket: fmt.Sprintf("releases-%d", n)}
	cd := codedeploy.NewFromConfig(m.Config())
	if _, err := cd.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(fx.app)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cd.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String(fx.app), DeploymentGroupName: aws.String(fx.group),
		ServiceRoleArn: aws.String("arn:aws:iam::123456789012:role/codedeploy"),
	}); err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(m.Config(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(fx.bucket)}); err != nil {
		t.Fatal(err)
	}
	key := release.Key(fx.app, sha, ".tar.gz")
	put, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(fx.bucket), Key: aws.String(key), Body: strings.NewReader("bundle bytes")})
	if err != nil {
		t.Fatal(err)
	}
	fx.rel = release.Release{Commit: sha, App: fx.app, Key: key, ETag: aws.ToString(put.ETag)}
	return fx
}

// motoDeployment reads a deployment as moto stores it. Raw JSON, because
// moto writes createTime as an ISO string, which the SDK cannot decode.
func motoDeployment(t *testing.T, url, id string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"deploymentId":%q}`, id)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "CodeDeploy_20141006.GetDeployment")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20240101/"+awstest.Region+"/codedeploy/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		DeploymentInfo map[string]any `json:"deploymentInfo"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode GetDeployment: %v", err)
	}
	return out.DeploymentInfo
}

func listDeployments(t *testing.T, m *awstest.Moto, app, group string) []string {
	t.Helper()
	out, err := codedeploy.NewFromConfig(m.Config()).ListDeployments(awstest.Ctx(t), &codedeploy.ListDeploymentsInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Deployments
}

func TestDeploymentRevisionIsTheReleaseObject(t *testing.T) {
	t.Parallel()
	m := needMoto(t)
	fx := newFixture(t, m)
	d := &Deployer{API: codedeploy.NewFromConfig(m.Config()), Application: fx.app, Group: fx.group}
	dep, err := d.Deploy(awstest.Ctx(t), target.DeployRequest{
		Release: fx.rel, Bucket: fx.bucket, Color: release.Green, Port: 8002,
		Description: "oops deploy 0123456 by alice: hotfix", Wait: false,
	})
	if err != nil {
		t.Fatal(err)
	}
	info := motoDeployment(t, m.URL, dep.ID)
	rev, _ := info["revision"].(map[string]any)
	loc, _ := rev["s3Location"].(map[string]any)
	want := map[string]any{
		"bucket":     fx.bucket,
		"key":        fx.app + "/" + fx.app + "-" + sha + ".tar.gz",
		"bundleType": "tgz",
		"eTag":       strings.Trim(fx.rel.ETag, `"`),
	}
	if rev["revisionType"] != "S3" {
		t.Errorf("revisionType = %v, want S3", rev["revisionType"])
	}
	for k, v := range want {
		if loc[k] != v {
			t.Errorf("revision s3Location.%s = %v, want %v", k, loc[k], v)
		}
	}
	if info["description"] != "oops deploy 0123456 by alice: hotfix" {
		t.Errorf("description = %v", info["description"])
	}
	if got := listDeployments(t, m, fx.app, fx.group); len(got) != 1 || got[0] != dep.ID {
		t.Errorf("deployments = %v, want just %s", got, dep.ID)
	}
}

func TestUnknownDeploymentGroupCreatesNothing(t *testing.T) {
	t.Parallel()
	m := needMoto(t)
	fx := newFixture(t, m)
	d := &Deployer{API: codedeploy.NewFromConfig(m.Config()), Application: fx.app, Group: "no-such-group", Bucket: fx.bucket}
	_, err := d.Deploy(awstest.Ctx(t), target.DeployRequest{Release: fx.rel, Wait: true})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "DeploymentGroupDoesNotExistException" {
		t.Fatalf("Deploy error = %v, want DeploymentGroupDoesNotExistException", err)
	}
	if !strings.Contains(err.Error(), "create deployment in "+fx.app+"/no-such-group") {
		t.Errorf("error %q does not name the application and group", err)
	}
	if got := listDeployments(t, m, fx.app, fx.group); len(got) != 0 {
		t.Errorf("deployments = %v, want none", got)
	}
	// AWS said no: nothing was installed, and the workflow gives the
	// color back its record.
	if !errors.Is(err, target.ErrNotStarted) {
		t.Errorf("Deploy error = %v, want it marked ErrNotStarted", err)
	}
}

// simulate makes the proxy answer one CodeDeploy action with body (moto
// creates deployments but never runs them).
func simulate(p *faultproxy.Proxy, action, body string, times int) {
	p.Add(faultproxy.Rule{Action: action, Status: http.StatusOK, Body: body, Times: times})
}

const simulatedTargets = `{"targetIds":["i-0aaa","i-0bbb"]}`

func simulatedInstances(bStatus, bEvents string) string {
	return `{"deploymentTargets":[
 {"deploymentTargetType":"InstanceTarget","instanceTarget":{"targetId":"i-0aaa","status":"Succeeded","lifecycleEvents":[
  {"lifecycleEventName":"AfterInstall","status":"Succeeded"},{"lifecycleEventName":"ApplicationStart","status":"Succeeded"},{"lifecycleEventName":"ValidateService","status":"Succeeded"}]}},
 {"deploymentTargetType":"InstanceTarget","instanceTarget":{"targetId":"i-0bbb","status":"` + bStatus + `","lifecycleEvents":[` + bEvents + `]}}]}`
}

func TestSimulatedDeploymentSucceeds(t *testing.T) {
	t.Parallel()
	m := needMoto(t)
	fx := newFixture(t, m)
	p := faultproxy.NewT(t, m.URL)
	simulate(p, "GetDeployment", `{"deploymentInfo":{"status":"InProgress","deploymentOverview":{"Succeeded":1,"InProgress":1}}}`, 1)
	simulate(p, "GetDeployment", `{"deploymentInfo":{"status":"Succeeded","deploymentOverview":{"Succeeded":2}}}`, 0)
	simulate(p, "ListDeploymentTargets", simulatedTargets, 0)
	simulate(p, "BatchGetDeploymentTargets", simulatedInstances("InProgress", `{"lifecycleEventName":"ApplicationStart","status":"InProgress"}`), 1)
	simulate(p, "BatchGetDeploymentTargets", simulatedInstances("Succeeded", `{"lifecycleEventName":"ValidateService","status":"Succeeded"}`), 0)

	d := &Deployer{API: codedeploy.NewFromConfig(awstest.Config(p.URL)), Application: fx.app, Group: fx.group, Bucket: fx.bucket, Poll: 10 * time.Millisecond}
	var out lines
	dep, err := d.Deploy(awstest.Ctx(t), target.DeployRequest{Release: fx.rel, Wait: true, Progress: out.add})
	if err != nil {
		t.Fatalf("Deploy: %v\n%s", err, out.String())
	}
	if dep.Status != "Succeeded" {
		t.Errorf("status = %s, want Succeeded", dep.Status)
	}
	for _, want := range []string{"i-0aaa: Succeeded, ValidateService Succeeded", "i-0bbb: InProgress, ApplicationStart InProgress", "i-0bbb: Succeeded, ValidateService Succeeded", "succeeded"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
	// The deployment is real on moto; only its progress was simulated.
	if got := listDeployments(t, m, fx.app, fx.group); len(got) != 1 || got[0] != dep.ID {
		t.Errorf("deployments = %v, want just %s", got, dep.ID)
	}
	if n := p.Count("CreateDeployment"); n != 1 {
		t.Errorf("%d CreateDeployment calls, want 1", n)
	}
}

func TestSimulatedDeploymentFails(t *testing.T) {
	t.Parallel()
	m := needMoto(t)
	fx := newFixture(t, m)
	p := faultproxy.NewT(t, m.URL)
	simulate(p, "GetDeployment", `{"deploymentInfo":{"status":"Failed","errorInformation":{"code":"HEALTH_CONSTRAINTS","message":"too many individual instances failed deployment"}}}`, 0)
	simulate(p, "ListDeploymentTargets", simulatedTargets, 0)
	simulate(p, "BatchGetDeploymentTargets", simulatedInstances("Failed",
		`{"lifecycleEventName":"AfterInstall","status":"Succeeded"},
		 {"lifecycleEventName":"ApplicationStart","status":"Failed","diagnostics":{"errorCode":"ScriptFailed","scriptName":"deploy/start.sh","message":"Script at specified location: deploy/start.sh run as user root failed with exit code 1","logTail":"[stdout]starting green on 8002\n[stderr]address already in use\n"}}`), 0)

	d := &Deployer{API: codedeploy.NewFromConfig(awstest.Config(p.URL)), Application: fx.app, Group: fx.group, Bucket: fx.bucket, Poll: 10 * time.Millisecond}
	var out lines
	_, err := d.Deploy(awstest.Ctx(t), target.DeployRequest{Release: fx.rel, Wait: true, Progress: out.add})
	if !errors.Is(err, target.ErrDeployFailed) {
		t.Fatalf("Deploy error = %v, want ErrDeployFailed", err)
	}
	if !strings.Contains(err.Error(), "i-0bbb failed in ApplicationStart (ScriptFailed, deploy/start.sh)") {
		t.Errorf("error %q does not name the instance, event, code and script", err)
	}
	for _, want := range []string{"HEALTH_CONSTRAINTS", "failed instance: i-0bbb", "[stderr]address already in use"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("diagnostics lack %q:\n%s", want, out.String())
		}
	}
}

// A CreateDeployment whose first attempt was applied but not answered, and
// whose retry CodeDeploy refused because that deployment is now active:
// the refusal is an answer, but a deployment was created, so it is not
// ErrNotStarted (the workflow must keep the color marked installing).
func TestCreateRetriedThenRefusedIsNotNotStarted(t *testing.T) {
	t.Parallel()
	m := needMoto(t)
	fx := newFixture(t, m)
	p := faultproxy.NewT(t, m.URL)
	p.Add(faultproxy.Rule{Action: "CreateDeployment", Cut: true, After: true, Times: 1})
	p.Add(faultproxy.Rule{Action: "CreateDeployment", Status: http.StatusBadRequest, Times: 1,
		Body: `{"__type":"DeploymentLimitExceededException","message":"The Deployment Group already has an active Deployment"}`})
	api := codedeploy.NewFromConfig(awstest.Config(p.URL), func(o *codedeploy.Options) { o.RetryMaxAttempts = 3 })
	d := &Deployer{API: api, Application: fx.app, Group: fx.group, Bucket: fx.bucket}
	_, err := d.Deploy(awstest.Ctx(t), target.DeployRequest{Release: fx.rel, Wait: false})
	if err == nil {
		t.Fatal("Deploy succeeded, want the refusal")
	}
	if got := listDeployments(t, m, fx.app, fx.group); len(got) != 1 {
		t.Fatalf("deployments = %v, want the one the first attempt created", got)
	}
	if errors.Is(err, target.ErrNotStarted) {
		t.Errorf("Deploy error = %v is ErrNotStarted, but a deployment was created", err)
	}
}
