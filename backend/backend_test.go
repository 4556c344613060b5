package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/local"
	"github.com/oops-deploy/oops/workflow"
)

// rcSet is the backends of a folder that holds .oopsrc rc, with no AWS
// region anywhere.
func rcSet(t *testing.T, rc string) *Set {
	t.Helper()
	wd := t.TempDir()
	path := filepath.Join(wd, ".oopsrc")
	if err := os.WriteFile(path, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(wd, "none"))
	return New(Env{
		Config:  func() (*config.Config, error) { return config.Load(path) },
		WorkDir: func() (string, error) { return wd, nil },
		Getenv:  func(string) string { return "" },
		Now:     time.Now,
		Who:     func() (string, string) { return "ada", "host" },
		Region:  func() string { return "" },
		Logf:    func(string, ...any) {},
	})
}

// usage is err's message and hints, as the CLI prints them, when err is a
// usage or .oopsrc error (exit 2); "" otherwise.
func usage(err error) string {
	var ue workflow.UsageError
	var ce *config.Error
	if !errors.As(err, &ue) && !errors.As(err, &ce) {
		return ""
	}
	return err.Error() + "\n" + workflow.HintOf(err)
}

// TestTargetForRefusesBadConfig: a target that cannot do what the command
// asks is refused from .oopsrc alone (exit 2), before AWS is asked for
// credentials or a region (none is configured here).
func TestTargetForRefusesBadConfig(t *testing.T) {
	const localRC = `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"]}`
	main := &target.State{
		Live: target.ColorState{Color: release.Blue, Port: 8081},
		Off:  target.ColorState{Color: release.Green, Port: 8082},
	}
	tests := []struct {
		name string
		rc   string
		opts TargetOptions
		want string
	}{
		{"no target", `{"application-name": "api", "store": "rel"}`, TargetOptions{}, "no target configured"},
		{"canary on a Classic ELB", `{"application-name": "api", "store": "rel", "elb-name": "web"}`,
			TargetOptions{Weighted: "oops deploy --canary"}, "oops deploy --canary needs a target that can split traffic"},
		{"preview of local", localRC, TargetOptions{PreviewOf: main}, "the local target has no preview"},
		{"preview without preview-elb-name", `{"application-name": "api", "store": "rel", "elb-name": "web"}`,
			TargetOptions{PreviewOf: main}, "no preview-elb-name: oops off needs a preview ELB"},
		{"preview of dns", `{"application-name": "api", "store": "rel", "dns-name": "api.example.com"}`,
			TargetOptions{PreviewOf: main}, "the dns target has no preview"},
		{"ALB without a listener", `{"application-name": "api", "store": "rel", "target": "alb"}`, TargetOptions{}, "see the ALB section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rcSet(t, tt.rc).Target(context.Background(), tt.opts)
			msg := usage(err)
			if got != nil || msg == "" {
				t.Fatalf("got %v, %v, want a usage error", got, err)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to contain %q", msg, tt.want)
			}
		})
	}
}

// TestDeployerOfLocalTarget: the local target installs releases itself,
// and Target and Deployer open it from the same .oopsrc.
func TestDeployerOfLocalTarget(t *testing.T) {
	s := rcSet(t, `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"]}`)
	tg, err := s.MainTarget(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Deployer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tg.(*local.Target); !ok {
		t.Errorf("Target = %T, want *local.Target", tg)
	}
	if _, ok := d.(*local.Target); !ok {
		t.Errorf("Deployer = %T, want *local.Target", d)
	}
}

// TestOpenFromConfig: what each .oopsrc opens, and the refusals that come
// from .oopsrc alone (exit 2), before any AWS call.
func TestOpenFromConfig(t *testing.T) {
	ctx := context.Background()
	s := rcSet(t, `{"application-name": "api", "store": "rel"}`)
	st, err := s.Store(ctx)
	if err != nil || !strings.Contains(st.String(), "rel") {
		t.Fatalf("directory store: %v, %v", st, err)
	}
	raw, _ := s.RawStore(ctx)
	again, _ := s.RawStore(ctx)
	if raw != again {
		t.Error("the store is opened again within one command")
	}
	if s.UsesCodeDeploy() {
		t.Error("no deployment-group: no CodeDeploy")
	}

	if _, err := rcSet(t, `{"application-name": "api", "store": "s3:///releases"}`).Store(ctx); !strings.Contains(usage(err), "names no bucket") {
		t.Errorf("s3 store without a bucket: %v", err)
	}
	// With a region, an ELB and a deployment group: CodeDeploy installs,
	// and needs the releases in S3.
	cd := rcSet(t, `{"application-name": "api", "store": "rel", "elb-name": "web", "deployment-group": "web-dg", "region": "eu-west-1"}`)
	if !cd.UsesCodeDeploy() {
		t.Error("elb-name with deployment-group: CodeDeploy")
	}
	if _, err := cd.Deployer(ctx); !strings.Contains(usage(err), "CodeDeploy fetches releases from S3") {
		t.Errorf("CodeDeploy with a directory store: %v", err)
	}
	// A Classic ELB without a deployment group cannot install releases.
	elb := rcSet(t, `{"application-name": "api", "store": "rel", "elb-name": "web", "region": "eu-west-1"}`)
	if _, err := elb.Deployer(ctx); !strings.Contains(usage(err), "cannot install releases by itself") {
		t.Errorf("ELB without deployment-group: %v", err)
	}
	// No region anywhere: said as a usage error with the ways to set one.
	noRegion := rcSet(t, `{"application-name": "api", "store": "rel", "elb-name": "web"}`)
	if _, err := noRegion.MainTarget(ctx); !strings.Contains(usage(err), "no AWS region configured") {
		t.Errorf("no region: %v", err)
	}
}

// TestUsesCodeDeployOnDNS: the dns target deploys through CodeDeploy when
// each color has its deployment group.
func TestUsesCodeDeployOnDNS(t *testing.T) {
	for rc, want := range map[string]bool{
		`{"application-name": "api", "store": "s3://rel", "dns-name": "api.example.com", "blue-deployment-group": "api-blue", "green-deployment-group": "api-green"}`: true,
		`{"application-name": "api", "store": "s3://rel", "dns-name": "api.example.com"}`:                                                                             false,
		`{"application-name": "api", "store": "s3://rel", "alb-name": "web", "deployment-group": "prod"}`:                                                             true,
	} {
		if got := rcSet(t, rc).UsesCodeDeploy(); got != want {
			t.Errorf("UsesCodeDeploy(%s) = %v, want %v", rc, got, want)
		}
	}
}
