package cmd

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/target/local"
)

type proxyOptions struct {
	Listen, PreviewListen string
	MetricsListen         string
	NoStart               bool
	CheckInterval         time.Duration
}

func newProxyCmd(f *Factory) *cobra.Command {
	var opts proxyOptions
	c := &cobra.Command{
		Use:   "proxy",
		Short: "Run the built-in blue/green proxy of the local target (long-running)",
		Long: `Run the proxy of the local target ("target": "local" in .oopsrc): it listens
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
processes keep running.`,
		Example: `  oops proxy
  oops proxy --listen :80 --preview-listen 127.0.0.1:8000
  nohup oops proxy >proxy.log 2>&1 &`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runProxy(cmd.Context(), opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&opts.Listen, "listen", "", "public `address` (default listen from .oopsrc, else "+local.DefaultListen+")")
	fl.StringVar(&opts.PreviewListen, "preview-listen", "", "`address` that forwards to the off color (default preview-listen from .oopsrc; none when empty)")
	fl.StringVar(&opts.MetricsListen, "metrics-listen", "", "`address` that serves Prometheus metrics at /metrics (default metrics-listen from .oopsrc; none when empty)")
	fl.BoolVar(&opts.NoStart, "no-start", false, "do not start app processes that oops started and are gone")
	fl.DurationVar(&opts.CheckInterval, "check-interval", 2*time.Second, "time between health checks of each color")
	return c
}

func (f *Factory) runProxy(ctx context.Context, opts proxyOptions) error {
	c, err := f.Config()
	if err != nil {
		return err
	}
	if k := c.TargetKind(); k != "local" {
		return withHint(usageErrorf("%s: oops proxy serves the local target, but the target is %q", c.Path, k),
			`set "target": "local" in .oopsrc (see the README, local target)`)
	}
	if opts.CheckInterval <= 0 {
		return usageErrorf("--check-interval must be more than 0, got %s", opts.CheckInterval)
	}
	t, err := localTarget(c, f.Now, f.Index)
	if err != nil {
		return err
	}
	listen := firstNonEmpty(opts.Listen, c.Listen, local.DefaultListen)
	preview := firstNonEmpty(opts.PreviewListen, c.PreviewListen)
	metrics := firstNonEmpty(opts.MetricsListen, c.MetricsListen)

	// Log lines may come from many goroutines at once.
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f.IO.ErrOut, "%s %s\n", f.Now().Format("2006-01-02T15:04:05.000Z07:00"), fmt.Sprintf(format, args...))
	}
	po := t.ProxyOptions()
	po.Logf = logf
	po.CheckInterval = opts.CheckInterval
	// The lock first: a second proxy is told so, not "address in use".
	p, err := local.NewProxy(po)
	if err != nil {
		return err
	}
	defer p.Close()
	var ls local.Listeners
	if ls.Public, err = net.Listen("tcp", listen); err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	if preview != "" {
		if ls.Preview, err = net.Listen("tcp", preview); err != nil {
			ls.Public.Close()
			return fmt.Errorf("listen on %s (preview-listen): %w", preview, err)
		}
	}
	if metrics != "" {
		if ls.Metrics, err = net.Listen("tcp", metrics); err != nil {
			ls.Public.Close()
			if ls.Preview != nil {
				ls.Preview.Close()
			}
			return fmt.Errorf("listen on %s (metrics-listen): %w", metrics, err)
		}
	}
	if !opts.NoStart {
		if err := t.Revive(ctx, logf); err != nil {
			logf("warning: %v", err)
		}
	}
	if ls.Preview != nil {
		logf("preview: %s -> the off color", ls.Preview.Addr())
	}
	if err := p.Serve(ctx, ls); err != nil {
		return err
	}
	logf("proxy stopped; the app processes keep running")
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
