// Package awstest starts moto_server (an AWS emulator) for tests and builds
// real aws-sdk-go-v2 configs pointing at it. Tests that need it skip when it
// is not installed, except under CI, where they fail.
//
// moto differs from AWS in nine ways oops depends on, so the server
// started here corrects them and nothing else:
//   - DeleteLoadBalancerListeners with several ports deletes none of them
//     (moto 5 rebuilds the list once per port); AWS deletes them all, and
//     oops deletes every listener in one call. The launcher replaces that
//     one function.
//   - SetLoadBalancerPoliciesForBackendServer on an instance port that no
//     listener had when the ELB was created is silently ignored (moto keeps
//     backend policies only for those ports); AWS sets them on any
//     instance port, which is how a switch gives the new color's port the
//     old one's ProxyProtocol policy before its listeners exist. The
//     launcher creates the port's entry, as AWS does.
//   - Route 53 ChangeResourceRecordSets applies a batch change by change,
//     so a change that fails half-way through leaves the ones before it
//     made; AWS applies a batch whole or not at all, which is what makes
//     the dns target's switch (both weights and its TXT record in one
//     batch) atomic. The launcher restores the zone when a batch fails.
//   - CloudWatch GetMetricData has no percentile statistics ("p99"): moto
//     answers 500. AWS computes them from the datapoints; the launcher
//     computes them from the values put (nearest rank), which is how the
//     bake reads an ALB target group's TargetResponseTime p99.
//   - S3 conditional writes (If-None-Match, If-Match) are checked and then
//     written without a lock, so two racing writers can both pass. S3 never
//     allows that; Moto.URL is a proxy that runs conditional writes one at a
//     time, so lock and publish races behave as on S3.
//   - DescribeAutoScalingGroups reports every instance's launch template
//     version as the template's default version; AWS reports the version
//     the instance was launched from, which is how a deploy onto an
//     auto-scaling group (target/asg) tells replaced instances from new
//     ones. The launcher records that version at launch.
//   - CreateLaunchTemplateVersion ignores SourceVersion (the new version
//     has only the data given); AWS starts from the source version's data
//     and overrides the fields given, which is how a deploy keeps the
//     image, instance type and network of the group's template. It also
//     keeps a new version's UserData as a plain string, which makes every
//     instance launched from it fail (500); AWS takes base64 user data
//     there as in CreateLaunchTemplate. The launcher merges the source
//     version and decodes the user data as CreateLaunchTemplate does.
//   - An instance that leaves an auto-scaling group (terminated, scaled
//     in) stays registered in the group's target groups; AWS deregisters
//     it, so status and the health gate count only the group's instances.
//     The launcher deregisters the group's own former instances.
package awstest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/oops-deploy/oops/internal/testport"
)

// Region used for every test config.
const Region = "us-east-1"

// launcher starts moto_server with DeleteLoadBalancerListeners fixed.
const launcher = `import sys
from moto.elb.models import ELBBackend

def delete_load_balancer_listeners(self, name, ports):
    balancer = self.get_load_balancer(name)
    if balancer:
        gone = {int(p) for p in ports}
        balancer.listeners = [l for l in balancer.listeners if int(l.load_balancer_port) not in gone]
    return balancer

ELBBackend.delete_load_balancer_listeners = delete_load_balancer_listeners

from moto.core.responses import EmptyResult
from moto.elb.models import FakeBackend
from moto.elb.responses import ELBResponse

def set_backend_policies(self):
    name = self._get_param("LoadBalancerName")
    balancer = self.elb_backend.get_load_balancer(name)
    port = self._get_int_param("InstancePort")
    if not [b for b in balancer.backends if int(b.instance_port) == port]:
        balancer.backends.append(FakeBackend(instance_port=port))
    self.elb_backend.set_load_balancer_policies_for_backend_server(name, port, self._get_param("PolicyNames", []))
    return EmptyResult()

ELBResponse.set_load_balancer_policies_for_backend_server = set_backend_policies

import copy
from moto.route53.models import Route53Backend

_change_rrsets = Route53Backend.change_resource_record_sets

def change_resource_record_sets(self, zoneid, change_list):
    zone = self.get_hosted_zone(zoneid)
    saved = (list(zone.rrsets), copy.deepcopy(zone.rr_changes))
    try:
        return _change_rrsets(self, zoneid, change_list)
    except Exception:
        zone.rrsets, zone.rr_changes = saved
        raise

Route53Backend.change_resource_record_sets = change_resource_record_sets

from moto.autoscaling.models import InstanceState

_instance_state_init = InstanceState.__init__

def instance_state_init(self, instance, *args, **kwargs):
    _instance_state_init(self, instance, *args, **kwargs)
    group = getattr(instance, "autoscaling_group", None)
    self.oops_launch_template = None
    if group is not None and group.ec2_launch_template is not None:
        tmpl = group.ec2_launch_template
        version = tmpl.get_version(group.launch_template_version)
        self.oops_launch_template = {"LaunchTemplateId": tmpl.id, "LaunchTemplateName": tmpl.name, "Version": str(version.number)}

InstanceState.__init__ = instance_state_init
InstanceState.launch_template = property(lambda self: getattr(self, "oops_launch_template", None))

from moto.ec2.responses.launch_templates import LaunchTemplates

_create_lt_version = LaunchTemplates.create_launch_template_version

def create_launch_template_version(self):
    from moto.ec2.utils import parse_user_data
    data = copy.deepcopy(self._get_param("LaunchTemplateData", {}))
    if "UserData" in data:
        data["UserData"] = parse_user_data(data["UserData"])
    source = self._get_param("SourceVersion")
    if source:
        name, tid = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
        template = self.ec2_backend.get_launch_template(tid) if tid else self.ec2_backend.get_launch_template_by_name(name)
        merged = copy.deepcopy(template.get_version(source).data)
        merged.update(data)
        data = merged
    given = self._get_param
    self._get_param = lambda key, default=None: data if key == "LaunchTemplateData" else given(key, default)
    return _create_lt_version(self)

LaunchTemplates.create_launch_template_version = create_launch_template_version

from moto.autoscaling.models import AutoScalingBackend

_update_attached_target_groups = AutoScalingBackend.update_attached_target_groups

def update_attached_target_groups(self, group_name):
    _update_attached_target_groups(self, group_name)
    group = self.autoscaling_groups[group_name]
    if not group.target_group_arns:
        return
    ids = {s.instance.id for s in group.instance_states}
    for tg in self.elbv2_backend.describe_target_groups(target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None):
        gone = []
        for tid in list(tg.targets):
            try:
                inst = self.ec2_backend.get_instance_by_id(tid)
            except Exception:
                inst = None
            if tid not in ids and getattr(inst, "autoscaling_group", None) is group:
                gone.append({"Id": tid})
        if gone:
            tg.deregister(gone)

AutoScalingBackend.update_attached_target_groups = update_attached_target_groups
from moto.cloudwatch.models import Statistics

_stat_for_type = Statistics.get_statistics_for_type

def get_statistics_for_type(self, stat):
    if stat.startswith("p"):
        vals = sorted(self.metric_single_values_list)
        try:
            q = float(stat[1:]) / 100
        except ValueError:
            return None
        if not vals or not 0 <= q <= 1:
            return None
        return vals[min(len(vals) - 1, max(0, int(q * len(vals) + 0.999999) - 1))]
    return _stat_for_type(self, stat)

Statistics.get_statistics_for_type = get_statistics_for_type
from moto.server import main
main(sys.argv[1:])
`

// Moto is a running moto_server on a loopback port.
type Moto struct {
	// URL is the endpoint for SDK clients (the atomic-S3 front).
	URL string
	// Direct is moto itself, without the front.
	Direct string
	cmd    *exec.Cmd
	front  *httptest.Server
	dir    string
}

// ErrMissing explains why moto tests cannot run.
var errMissing = "moto_server is not installed (pip install 'moto[server]'); AWS integration tests need it"

// Start starts a moto_server for the test and stops it at cleanup.
// Without moto_server the test is skipped, or failed when $CI is set.
func Start(tb testing.TB) *Moto {
	tb.Helper()
	m, err := StartServer()
	if err != nil {
		Unavailable(tb, err)
	}
	tb.Cleanup(m.Stop)
	return m
}

// Unavailable skips (or, under CI, fails) a test that needs moto.
func Unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("moto unavailable under CI: %v", err)
	}
	tb.Skipf("skipping: %v", err)
}

// StartServer starts moto_server on a free loopback port; for TestMain.
func StartServer() (*Moto, error) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		return nil, fmt.Errorf("%s", errMissing)
	}
	py, err := python()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "awstest")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "moto_server.py")
	if err := os.WriteFile(script, []byte(launcher), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var lastErr error
	for range 3 {
		// moto binds its port a second or more after it starts: a
		// port from testport cannot be taken by another listener meanwhile.
		port, release, err := testport.Reserve()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		defer release()
		cmd := exec.Command(py, script, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start moto_server: %w", err)
		}
		direct := fmt.Sprintf("http://127.0.0.1:%d", port)
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if lastErr = waitReady(direct, exited, 30*time.Second); lastErr == nil {
			front, err := atomicS3(direct)
			if err != nil {
				_ = cmd.Process.Kill()
				os.RemoveAll(dir)
				return nil, err
			}
			return &Moto{URL: front.URL, Direct: direct, cmd: cmd, front: front, dir: dir}, nil
		}
		_ = cmd.Process.Kill()
		<-exited
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("moto_server did not start: %w", lastErr)
}

// python finds the interpreter that has moto: the one moto_server runs.
func python() (string, error) {
	for _, cand := range []string{"python3", "python"} {
		p, err := exec.LookPath(cand)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import moto.server, moto.elb.models").Run() == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no python3 on PATH can import moto (pip install 'moto[server]')")
}

func waitReady(url string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("moto_server exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer on %s after %s", url, d)
}

// atomicS3 fronts moto with a proxy that runs S3 conditional writes one at
// a time (see the package comment).
func atomicS3(upstream string) (*httptest.Server, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "" {
			mu.Lock()
			defer mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})), nil
}

// Stop kills the server.
func (m *Moto) Stop() {
	if m.front != nil {
		m.front.Close()
	}
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
	}
	if m.dir != "" {
		os.RemoveAll(m.dir)
	}
}

// Reset clears every emulated resource.
func (m *Moto) Reset(tb testing.TB) {
	tb.Helper()
	resp, err := http.Post(m.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		tb.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
}

// Config returns an SDK config with static credentials that talks to url
// (moto itself, or a fault proxy in front of it).
func Config(url string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(url),
		// No retries: tests must see each failure exactly as injected.
		RetryMaxAttempts: 1,
	}
}

// Config returns an SDK config for this server.
func (m *Moto) Config() aws.Config { return Config(m.URL) }

// Env returns environment variables that point the oops binary (or the aws
// CLI) at url.
func Env(url string) []string {
	return []string{
		"AWS_ENDPOINT_URL=" + url,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Setenv sets Env(url) in env: a test (t.Setenv), a testscript.Env or a
// testscript.TestScript.
func Setenv(env interface{ Setenv(k, v string) }, url string) {
	for _, kv := range Env(url) {
		k, v, _ := strings.Cut(kv, "=")
		env.Setenv(k, v)
	}
}

// Ctx is a test context with a deadline.
func Ctx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
