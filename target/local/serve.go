package local

import (
	"context"
	"fmt"
	"net"
	"time"
)

// ServeOptions are how `oops proxy` runs the proxy of a Target.
type ServeOptions struct {
	// Listen is the public address; Preview (forwarding to the off color)
	// and Metrics (Prometheus) are opened only when set.
	Listen, Preview, Metrics string
	// NoStart leaves app processes that oops started and are gone down.
	NoStart       bool
	CheckInterval time.Duration
	Logf          func(format string, args ...any)
}

// Serve runs t's proxy until ctx ends: it takes the proxy lock (a second
// proxy is told so, not "address in use"), listens, restarts app
// processes that are gone (unless NoStart), and serves, draining on the
// way out. The app processes keep running after it returns.
func (t *Target) Serve(ctx context.Context, o ServeOptions) error {
	po := t.ProxyOptions()
	po.Logf = o.Logf
	po.CheckInterval = o.CheckInterval
	p, err := NewProxy(po)
	if err != nil {
		return err
	}
	defer p.Close()
	ls, err := Listen(o.Listen, o.Preview, o.Metrics)
	if err != nil {
		return err
	}
	if !o.NoStart {
		if err := t.Revive(ctx, o.Logf); err != nil {
			o.Logf("warning: %v", err)
		}
	}
	if ls.Preview != nil {
		o.Logf("preview: %s -> the off color", ls.Preview.Addr())
	}
	if err := p.Serve(ctx, ls); err != nil {
		return err
	}
	o.Logf("proxy stopped; the app processes keep running")
	return nil
}

// Listen opens the public listener and, when their addresses are set, the
// preview and metrics ones; on an error none stays open.
func Listen(listen, preview, metrics string) (Listeners, error) {
	var ls Listeners
	var err error
	if ls.Public, err = net.Listen("tcp", listen); err != nil {
		return ls, fmt.Errorf("listen on %s: %w", listen, err)
	}
	if preview != "" {
		if ls.Preview, err = net.Listen("tcp", preview); err != nil {
			ls.Public.Close()
			return ls, fmt.Errorf("listen on %s (preview-listen): %w", preview, err)
		}
	}
	if metrics != "" {
		if ls.Metrics, err = net.Listen("tcp", metrics); err != nil {
			ls.Public.Close()
			if ls.Preview != nil {
				ls.Preview.Close()
			}
			return ls, fmt.Errorf("listen on %s (metrics-listen): %w", metrics, err)
		}
	}
	return ls, nil
}
