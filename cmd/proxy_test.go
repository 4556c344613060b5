package cmd

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/backend"
	"github.com/oops-deploy/oops/config"
)

func TestProxyFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *ProxyOptions) error) *cobra.Command {
		return newProxyCmd(flagFactory(), runF)
	}, []flagCase[ProxyOptions]{
		{args: []string{"proxy"}, want: ProxyOptions{CheckInterval: 2 * time.Second}},
		{args: []string{"proxy", "--listen", ":80", "--preview-listen", "127.0.0.1:8000", "--metrics-listen", "127.0.0.1:9100",
			"--no-start", "--check-interval", "5s"},
			want: ProxyOptions{Listen: ":80", PreviewListen: "127.0.0.1:8000", MetricsListen: "127.0.0.1:9100", NoStart: true, CheckInterval: 5 * time.Second}},
		{args: []string{"proxy", "--check-interval", "often"}, usage: `invalid argument "often" for "--check-interval"`},
		{args: []string{"proxy", ":80"}, usage: `oops proxy takes no arguments, got ":80"`},
	})
}

// TestProxyRunRefuses: a proxy that would not serve the local target, or
// would poll without pause, is refused (exit 2) before it takes the proxy
// lock or listens.
func TestProxyRunRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		rc       string
		interval time.Duration
		want     string
	}{
		{"an ELB target", `{"application-name": "api", "store": "rel", "elb-name": "web"}`, time.Second, `oops proxy serves the local target, but the target is "elb"`},
		{"no target", `{"application-name": "api", "store": "rel"}`, time.Second, `oops proxy serves the local target, but the target is ""`},
		{"--check-interval 0", `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"]}`, 0, "--check-interval must be more than 0, got 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, ".oopsrc")
			c, err := config.Parse(path, []byte(tt.rc))
			if err != nil {
				t.Fatal(err)
			}
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			var errOut bytes.Buffer
			opts := &ProxyOptions{
				IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &errOut}, Now: time.Now,
				Config: func() (*config.Config, error) { return c, nil },
				Local:  backend.New(backend.Env{Now: time.Now}).LocalTarget,
				// The public address is taken, and the context is done: a
				// run that got as far as listening or serving ends at once.
				Listen: taken.Addr().String(), CheckInterval: tt.interval,
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err = proxyRun(ctx, opts)
			if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v (exit %d), want exit 2 with %q", err, ExitCode(err), tt.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the run left %v in the project folder", entries)
			}
		})
	}
}
