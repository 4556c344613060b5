package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/local"
)

// rcFactory is a Factory whose working directory holds .oopsrc rc.
func rcFactory(t *testing.T, rc string) *Factory {
	t.Helper()
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFactory("test")
	f.IO = &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	f.Getwd = func() (string, error) { return wd, nil }
	f.Getenv = func(string) string { return "" }
	return f
}

// TestTargetForRefusesBadConfig: a target that cannot do what the command
// asks is refused from .oopsrc alone (exit 2), before AWS is asked for
// credentials or a region (none is configured here).
func TestTargetForRefusesBadConfig(t *testing.T) {
	t.Parallel()
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
		{"shift on local", localRC, TargetOptions{Weighted: "oops shift"}, "oops shift needs a target that can split traffic"},
		{"canary on a Classic ELB", `{"application-name": "api", "store": "rel", "elb-name": "web"}`,
			TargetOptions{Weighted: "oops deploy --canary"}, "oops deploy --canary needs a target that can split traffic"},
		{"preview of local", localRC, TargetOptions{PreviewOf: main}, "the local target has no preview"},
		{"preview without preview-elb-name", `{"application-name": "api", "store": "rel", "elb-name": "web"}`,
			TargetOptions{PreviewOf: main}, "no preview-elb-name: oops off needs a preview ELB"},
		{"ALB without a listener", `{"application-name": "api", "store": "rel", "target": "alb"}`, TargetOptions{}, "see the ALB section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := rcFactory(t, tt.rc).TargetFor(context.Background(), tt.opts)
			if got != nil || ExitCode(err) != ExitUsage {
				t.Fatalf("got %v, %v (exit %d), want a usage error", got, err, ExitCode(err))
			}
			var b bytes.Buffer
			PrintError(&b, err)
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("error %q, want it to contain %q", b.String(), tt.want)
			}
		})
	}
}

// TestDeployerOfLocalTarget: the local target installs releases itself,
// and Target and Deployer open it from the same .oopsrc.
func TestDeployerOfLocalTarget(t *testing.T) {
	t.Parallel()
	f := rcFactory(t, `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"]}`)
	tg, err := f.Target(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.Deployer(context.Background())
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
