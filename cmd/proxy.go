package cmd

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/target/local"
)

// ProxyOptions are what `oops proxy` runs with: flags and dependencies.
type ProxyOptions struct {
	IO     *IOStreams
	Now    func() time.Time
	Config func() (*config.Config, error)
	// Local opens the local target of a .oopsrc.
	Local func(*config.Config) (*local.Target, error)

	Listen, PreviewListen string
	MetricsListen         string
	NoStart               bool
	CheckInterval         time.Duration
}

const proxyLong = `Run the proxy of the local target ("target": "local" in .oopsrc): it listens
on "listen" and forwards every request to the live color's port on
127.0.0.1, and, when "preview-listen" is set, forwards that address to the
off color (the idle port of a classic nginx setup).

oops deploy, rollback and status talk to it through a unix socket in
"state-dir" (mode 0600: only this user on this host). A switch is atomic:
requests that arrive after it go to the new color, requests in flight on
the old color finish there (up to "drain-timeout", then they are cut);
keep-alive connections, WebSockets and streaming responses pass through.
The live color is saved in state-dir, so a restarted proxy serves the same
color. Each color's health check is polled every few seconds; oops status
shows the results.

Under a flood the admin socket keeps working: client connections are
capped ("max-connections", lowered to fit the open-files limit, which the
proxy raises to the hard limit) and past the cap new ones are closed at
once. Heads and bodies that stall get a 408 ("header-timeout",
"body-timeout"), clients that stop reading are cut ("write-timeout").

The proxy counts each color's requests by status class and their
durations: oops status shows the last minute's rate, 5xx share and p99,
and "metrics-listen" (or --metrics-listen), when set, serves them to
Prometheus at /metrics.

When it starts, the proxy also starts again any app process oops started
that is gone (after a reboot, say), unless --no-start.

It runs until interrupted (Ctrl-C, SIGTERM), then stops accepting, lets
requests in flight finish (up to drain-timeout) and exits. The app
processes keep running.`

// newProxyCmd builds `oops proxy`; runF replaces the run in flag tests
// (nil: proxyRun).
func newProxyCmd(f *Factory, runF func(context.Context, *ProxyOptions) error) *cobra.Command {
	opts := &ProxyOptions{IO: f.IO, Now: f.Now, Config: f.Config, Local: f.Backends().LocalTarget}
	c := &cobra.Command{
		Use:   "proxy",
		Short: "Run the built-in blue/green proxy of the local target (long-running)",
		Long:  proxyLong,
		Example: `  oops proxy
  oops proxy --listen :80 --preview-listen 127.0.0.1:8000
  nohup oops proxy >proxy.log 2>&1 &`,
		Args: noArgs,
	}
	fl := c.Flags()
	fl.StringVar(&opts.Listen, "listen", "", "public `address` (default listen from .oopsrc, else "+local.DefaultListen+")")
	fl.StringVar(&opts.PreviewListen, "preview-listen", "", "`address` that forwards to the off color (default preview-listen from .oopsrc; none when empty)")
	fl.StringVar(&opts.MetricsListen, "metrics-listen", "", "`address` that serves Prometheus metrics at /metrics (default metrics-listen from .oopsrc; none when empty)")
	fl.BoolVar(&opts.NoStart, "no-start", false, "do not start app processes that oops started and are gone")
	fl.DurationVar(&opts.CheckInterval, "check-interval", 2*time.Second, "time between health checks of each color")
	return runCmd(c, opts, runF, proxyRun)
}

// proxyRun serves the local target's proxy until ctx ends.
func proxyRun(ctx context.Context, opts *ProxyOptions) error {
	c, t, err := proxyTarget(opts)
	if err != nil {
		return err
	}
	return t.Serve(ctx, local.ServeOptions{
		Listen:  firstNonEmpty(opts.Listen, c.Listen, local.DefaultListen),
		Preview: firstNonEmpty(opts.PreviewListen, c.PreviewListen), Metrics: firstNonEmpty(opts.MetricsListen, c.MetricsListen),
		NoStart: opts.NoStart, CheckInterval: opts.CheckInterval, Logf: proxyLogger(opts.IO.ErrOut, opts.Now),
	})
}

// proxyTarget is .oopsrc and its local target, refusing any other target
// and a --check-interval that would spin.
func proxyTarget(opts *ProxyOptions) (*config.Config, *local.Target, error) {
	c, err := opts.Config()
	if err != nil {
		return nil, nil, err
	}
	if k := c.TargetKind(); k != "local" {
		return nil, nil, withHint(usageErrorf("%s: oops proxy serves the local target, but the target is %q", c.Path, k),
			`set "target": "local" in .oopsrc (see the README, local target)`)
	}
	if opts.CheckInterval <= 0 {
		return nil, nil, usageErrorf("--check-interval must be more than 0, got %s", opts.CheckInterval)
	}
	t, err := opts.Local(c)
	if err != nil {
		return nil, nil, err
	}
	return c, t, nil
}

// proxyLogger writes timestamped lines on w, which may come from many
// goroutines at once.
func proxyLogger(w io.Writer, now func() time.Time) func(format string, args ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s %s\n", now().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
