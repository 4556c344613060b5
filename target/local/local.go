// Package local is the embedded default target: blue/green on one host with
// no cloud. Two copies of the app listen on two loopback ports; the oops
// proxy (Proxy, run by `oops proxy`) forwards the public address to the live
// one and switches atomically. Deploys unpack a release into the state
// directory and start it, detached, on the off color's port.
//
// The state directory holds live.json (the live color, written by the
// proxy, or by oops when no proxy runs), blue.<generation>.json and green.<generation>.json (what each
// color runs, written by deploys), proxy.sock (the admin socket, mode 0600)
// and releases/ (one unpacked directory per deployed release and color).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/release/archive"
	"github.com/oops-deploy/oops/target"
)

// Defaults for the .oopsrc keys of the local target.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultBluePort     = 8081
	DefaultGreenPort    = 8082
	DefaultHealthPath   = "/healthcheck"
	DefaultDrainTimeout = 30 * time.Second
	// Client connection limits of the proxy (see ProxyOptions).
	DefaultMaxConnections = 10000
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultBodyTimeout    = time.Minute
	DefaultWriteTimeout   = time.Minute
	DefaultIdleTimeout    = 2 * time.Minute
	// DefaultStateDir sits inside the default directory store (.oops),
	// which oops init suggests ignoring in git.
	DefaultStateDir = ".oops/local"
	// DefaultDeployTimeout bounds the wait for a new release to get healthy.
	DefaultDeployTimeout = 60 * time.Second
	// DefaultUpstreamTimeout is how long an app may take to start
	// answering (nginx's proxy_read_timeout).
	DefaultUpstreamTimeout = 60 * time.Second
)

// DefaultTrustedProxies are the peers trusted with X-Forwarded-* when
// trusted-proxies is unset: loopback, where a TLS terminator on the same
// host connects from.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// Options configure the local target.
type Options struct {
	App string
	// StateDir is absolute (cmd resolves it against the .oopsrc folder).
	StateDir      string
	Listen        string
	PreviewListen string
	BluePort      int
	GreenPort     int
	// Command starts the app, run in the release directory; $PORT and the
	// other OOPS_ variables are expanded in its arguments.
	Command      []string
	HealthPath   string
	DrainTimeout time.Duration
	// MaxConnections and the timeouts are the proxy's limits on client
	// connections (0: the defaults; see ProxyOptions).
	MaxConnections                                        int
	HeaderTimeout, BodyTimeout, WriteTimeout, IdleTimeout time.Duration
	// TrustedProxies and UpstreamTimeout: see ProxyOptions.
	TrustedProxies  []netip.Prefix
	UpstreamTimeout time.Duration
	// Open reads a release's artifact from the store.
	Open func(ctx context.Context, rel release.Release) (io.ReadCloser, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// StopGrace is how long an app gets to exit after SIGTERM (default 10s).
	StopGrace time.Duration
	// PollInterval spaces health polls while waiting (default 100ms).
	PollInterval time.Duration
	// ProbeTimeout bounds one health probe (default 2s).
	ProbeTimeout time.Duration
	// Archive are the limits a release archive is unpacked with (zero
	// fields: the defaults), the same as oops publish validates with.
	Archive archive.Limits
}

// Target is the local blue/green target. It implements target.Target and
// target.Deployer.
type Target struct {
	opts  Options
	admin *adminClient
	hc    *http.Client
	procs procs
}

var (
	_ target.Target   = (*Target)(nil)
	_ target.Deployer = (*Target)(nil)
)

// New checks the options and fills in defaults.
func New(opts Options) (*Target, error) {
	opts.fill()
	if opts.StateDir == "" || !filepath.IsAbs(opts.StateDir) {
		return nil, fmt.Errorf("%w: local target: state-dir %q must be an absolute path", target.ErrMisconfigured, opts.StateDir)
	}
	if opts.BluePort == opts.GreenPort {
		return nil, fmt.Errorf("%w: blue-port and green-port are both %d: give each color its own port", target.ErrMisconfigured, opts.BluePort)
	}
	for _, p := range []int{opts.BluePort, opts.GreenPort} {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("%w: port %d is not a TCP port", target.ErrMisconfigured, p)
		}
	}
	if !strings.HasPrefix(opts.HealthPath, "/") {
		return nil, fmt.Errorf("%w: health-path %q must start with /", target.ErrMisconfigured, opts.HealthPath)
	}
	return &Target{opts: opts, admin: newAdminClient(opts.StateDir), hc: health.Client(opts.ProbeTimeout)}, nil
}

func (o *Options) fill() {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.BluePort == 0 {
		o.BluePort = DefaultBluePort
	}
	if o.GreenPort == 0 {
		o.GreenPort = DefaultGreenPort
	}
	if o.HealthPath == "" {
		o.HealthPath = DefaultHealthPath
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 10 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 2 * time.Second
	}
}

// ProxyOptions are the options `oops proxy` runs with for this target.
func (t *Target) ProxyOptions() ProxyOptions {
	return ProxyOptions{
		StateDir: t.opts.StateDir, BluePort: t.opts.BluePort, GreenPort: t.opts.GreenPort,
		HealthPath: t.opts.HealthPath, DrainTimeout: t.opts.DrainTimeout, Now: t.opts.Now,
		MaxConnections: t.opts.MaxConnections, HeaderTimeout: t.opts.HeaderTimeout,
		BodyTimeout: t.opts.BodyTimeout, WriteTimeout: t.opts.WriteTimeout, IdleTimeout: t.opts.IdleTimeout,
		TrustedProxies: t.opts.TrustedProxies, UpstreamTimeout: t.opts.UpstreamTimeout,
	}
}

func (t *Target) String() string { return "local proxy " + t.opts.Listen }

func (t *Target) port(c release.Color) int {
	if c == release.Green {
		return t.opts.GreenPort
	}
	return t.opts.BluePort
}

// proxyStatus asks the running proxy, after a fresh health check when
// check; nil (and no error) when no proxy runs.
func (t *Target) proxyStatus(ctx context.Context, check bool) (*ProxyStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ps, err := t.admin.status(ctx, check)
	if errors.Is(err, errProxyDown) {
		return nil, nil
	}
	return ps, err
}

// Metrics reads the running proxy's request counts per color (for release
// analysis); with no proxy running, an error that says so.
func (t *Target) Metrics(ctx context.Context) (*ProxyMetrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := t.admin.metrics(ctx)
	if errors.Is(err, errProxyDown) {
		return nil, fmt.Errorf("read request metrics: %w (start it with: oops proxy)", err)
	}
	return m, err
}

// live is the live color: the running proxy's, or the persisted one.
// check asks the proxy to check health first (for State).
func (t *Target) live(ctx context.Context, check bool) (release.Color, *ProxyStatus, error) {
	ps, err := t.proxyStatus(ctx, check)
	if err != nil {
		return "", nil, err
	}
	if ps != nil {
		return ps.Live, ps, nil
	}
	ls, err := readLive(t.opts.StateDir)
	if err != nil {
		return "", nil, err
	}
	return ls.Live, nil, nil
}

// State reports the live color, what each color runs (pid, commit) and its
// health: the proxy's last check when it runs, a fresh probe otherwise.
func (t *Target) State(ctx context.Context) (*target.State, error) {
	live, ps, err := t.live(ctx, true)
	if err != nil {
		return nil, err
	}
	st := &target.State{
		Kind:        "local",
		Name:        t.opts.Listen,
		HealthCheck: "GET http://127.0.0.1:{port}" + t.opts.HealthPath,
	}
	for _, c := range []release.Color{live, live.Other()} {
		cs, err := t.colorState(ctx, c, ps)
		if err != nil {
			return nil, err
		}
		if c == live {
			cs.Weight = 100
			st.Live = cs
		} else {
			st.Off = cs
		}
	}
	if ps != nil && ps.CanaryWeight > 0 && ps.Canary == st.Off.Color {
		// A canary: the live color keeps the rest, request by request.
		st.Base = live
		st.Live.Weight, st.Off.Weight = 100-ps.CanaryWeight, ps.CanaryWeight
	}
	// Where the traffic goes, down to the process (status prints these).
	app := func(cs target.ColorState) string {
		s := fmt.Sprintf("%s (127.0.0.1:%d", cs.Color, cs.Port)
		if cs.PID > 0 {
			s += fmt.Sprintf(", pid %d", cs.PID)
		} else {
			s += ", no process started by oops"
		}
		return s + ")"
	}
	if ps == nil {
		st.Listeners = []string{fmt.Sprintf("%s: oops proxy is not running (start it with: oops proxy); it will send traffic to %s", t.opts.Listen, app(st.Live))}
	} else {
		st.Listeners = []string{fmt.Sprintf("%s -> %s; oops proxy pid %d", ps.Listen, app(st.Live), ps.PID)}
		if st.Base != "" {
			st.Listeners[0] = fmt.Sprintf("%s -> %d%% %s, %d%% %s (a canary, request by request); oops proxy pid %d",
				ps.Listen, st.Live.Weight, app(st.Live), st.Off.Weight, app(st.Off), ps.PID)
		}
		if ps.Preview != "" {
			st.Listeners = append(st.Listeners, fmt.Sprintf("%s (preview) -> %s", ps.Preview, app(st.Off)))
		}
		if l := ps.Limits; l != nil {
			s := fmt.Sprintf("limits: %d of %d connections open", l.Connections, l.MaxConnections)
			if l.Refused > 0 {
				s += fmt.Sprintf(" (%d closed at max-connections)", l.Refused)
			}
			st.Listeners = append(st.Listeners, s+fmt.Sprintf("; header-timeout %s, body-timeout %s, write-timeout %s, idle-timeout %s, upstream-timeout %s, drain-timeout %s",
				l.HeaderTimeout, l.BodyTimeout, l.WriteTimeout, l.IdleTimeout, l.UpstreamTimeout, ps.DrainTimeout))
		}
	}
	if ps == nil || ps.Preview == "" {
		st.Listeners = append(st.Listeners, fmt.Sprintf("off: %s takes no traffic", app(st.Off)))
	}
	return st, nil
}

func (t *Target) colorState(ctx context.Context, c release.Color, ps *ProxyStatus) (target.ColorState, error) {
	rec, err := readColor(t.opts.StateDir, c, t.port(c))
	if err != nil {
		return target.ColorState{}, err
	}
	out := target.ColorState{Color: c, Port: rec.Port, Commit: rec.Commit, Installing: rec.Installing && rec.Commit != ""}
	inst := target.Instance{
		ID:      "-",
		Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(rec.Port)),
		State:   rec.Status,
	}
	alive := t.procs.alive(rec)
	switch {
	case rec.PID > 0 && alive:
		out.PID = rec.PID
		inst.ID = "pid " + strconv.Itoa(rec.PID)
	case rec.Status == procRunning:
		inst.State = "exited"
		inst.ID = "pid " + strconv.Itoa(rec.PID)
		inst.Reason = "process exited; see " + rec.Log
	case rec.Status == procFailed:
		inst.Reason = rec.Error
	}
	var h *Health
	if ps != nil {
		h = ps.Colors[c].Health
		out.Traffic = ps.Colors[c].Traffic
	}
	if h == nil {
		status, perr := probe(ctx, t.hc, rec.Port, t.opts.HealthPath)
		h = &Health{Healthy: perr == nil, Status: status, Checked: t.opts.Now()}
		if perr != nil {
			h.Error = perr.Error()
		}
	}
	healthy := h.Healthy
	out.Healthy = &healthy
	inst.Healthy = healthy
	if !healthy && inst.Reason == "" {
		inst.Reason = h.Error
	}
	out.Instances = []target.Instance{inst}
	return out, nil
}

// Plan describes a switch: one message to the proxy, or, with no proxy
// running, one write of the persisted live color it will start with.
func (t *Target) Plan(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
	p := &target.Plan{From: st.Live.Color, To: to, Weight: weight}
	ps, err := t.proxyStatus(ctx, false)
	if err != nil {
		return nil, err
	}
	switch {
	case weight < 100 && ps == nil:
		return nil, fmt.Errorf("%w: no oops proxy is running: only a running proxy splits traffic (start it with: oops proxy)", target.ErrMisconfigured)
	case weight < 100 && to == st.Live.Color:
		return nil, fmt.Errorf("%w: %s is live: a canary sends a share to the other color", target.ErrMisconfigured, to)
	case weight < 100:
		p.Steps = []string{
			fmt.Sprintf("tell the proxy (pid %d, %s) to send %d%% of the new requests on %s to %s (127.0.0.1:%d), request by request",
				ps.PID, t.admin.sock, weight, ps.Listen, to, t.port(to)),
			fmt.Sprintf("%s keeps %d%%; a proxy restart sends it all of them", st.Live.Color, 100-weight),
		}
	case to == st.Live.Color && st.Base != "" && ps != nil:
		p.Steps = []string{fmt.Sprintf("tell the proxy (pid %d, %s) to end the canary: all new requests on %s to %s", ps.PID, t.admin.sock, ps.Listen, to)}
	case ps != nil:
		p.Steps = []string{
			fmt.Sprintf("tell the proxy (pid %d, %s) to send new requests on %s to %s (127.0.0.1:%d)",
				ps.PID, t.admin.sock, ps.Listen, to, t.port(to)),
			fmt.Sprintf("requests in flight on %s finish there (drain timeout %s)", st.Live.Color, ps.DrainTimeout),
		}
	default:
		p.Steps = []string{
			fmt.Sprintf("no proxy is running: record %s as live in %s; oops proxy will send traffic there when it starts",
				to, filepath.Join(t.opts.StateDir, liveFile)),
		}
	}
	return p, nil
}

// Apply switches through the proxy; with no proxy running it writes the
// persisted live color under the proxy's lock, so a proxy starting at the
// same moment reads either the old or the new color, never half of one.
func (t *Target) Apply(ctx context.Context, p *target.Plan) error {
	_, err := t.admin.switchTo(ctx, p.To, p.From, p.Weight)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errConflict):
		return fmt.Errorf("%w: %v; someone else switched: run oops status", target.ErrInconsistent, err)
	case !errors.Is(err, errProxyDown):
		return err
	case p.Weight > 0 && p.Weight < 100:
		// No proxy to split traffic: recording To as live would send it all.
		return fmt.Errorf("%w: the oops proxy stopped: nothing was split (start it with: oops proxy)", target.ErrInconsistent)
	}
	if err := ensureDir(t.opts.StateDir); err != nil {
		return err
	}
	lf, held, err := tryLock(filepath.Join(t.opts.StateDir, lockFile))
	if err != nil {
		return fmt.Errorf("lock state directory: %w", err)
	}
	if !held {
		return fmt.Errorf("%w: the proxy is starting; try again in a moment", target.ErrInconsistent)
	}
	defer lf.Close()
	ls, err := readLive(t.opts.StateDir)
	if err != nil {
		return err
	}
	gen := target.FenceGeneration(ctx)
	if gen != 0 && gen < ls.Generation {
		return fmt.Errorf("%w: %s was switched under lock generation %d since; this command holds %d",
			target.ErrFenced, filepath.Join(t.opts.StateDir, liveFile), ls.Generation, gen)
	}
	if ls.Live != p.From {
		return fmt.Errorf("%w: expected %s live, found %s; run oops status", target.ErrInconsistent, p.From, ls.Live)
	}
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	return writeLive(t.opts.StateDir, liveState{Live: p.To, Since: t.opts.Now(), Generation: max(gen, ls.Generation)})
}

// Probe checks color c directly on its port, and that the process oops
// started there still runs.
func (t *Target) Probe(ctx context.Context, c release.Color) error {
	rec, err := readColor(t.opts.StateDir, c, t.port(c))
	if err != nil {
		return err
	}
	if rec.PID > 0 && !t.procs.alive(rec) {
		why := fmt.Sprintf("%s's process (pid %d) is not running", c, rec.PID)
		if rec.Log != "" {
			why += "; last lines of " + rec.Log + ":\n" + logTail(rec.Log, 10)
		}
		return fmt.Errorf("%w: %s", target.ErrUnhealthy, why)
	}
	if _, err := probe(ctx, t.hc, rec.Port, t.opts.HealthPath); err != nil {
		hint := ""
		switch {
		case rec.Status == procFailed:
			hint = fmt.Sprintf(" (the last deploy to %s failed: %s)", c, firstLine(rec.Error))
		case rec.Commit == "":
			hint = fmt.Sprintf(" (nothing deployed on %s yet: oops deploy REV)", c)
		}
		return fmt.Errorf("%w: %s: %v%s", target.ErrUnhealthy, c, err, hint)
	}
	return nil
}

// Verify waits until c answers its health check through the proxy (the
// X-Oops-Color header says which color answered), or directly when no
// proxy runs.
func (t *Target) Verify(ctx context.Context, c release.Color, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		last = t.verifyOnce(ctx, c)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %v", target.ErrUnhealthy, c, last)
		case <-time.After(t.opts.PollInterval):
		}
	}
}

func (t *Target) verifyOnce(ctx context.Context, c release.Color) error {
	ps, err := t.proxyStatus(ctx, false)
	if err != nil {
		return err
	}
	if ps == nil {
		_, err := probe(ctx, t.hc, t.port(c), t.opts.HealthPath)
		return err
	}
	before, cerr := t.Counts(ctx, c)
	url := "http://" + dialable(ps.Listen) + t.opts.HealthPath
	res, err := health.Get(ctx, t.hc, url, userAgent)
	if res == nil {
		return err
	}
	// Which color answered comes first: c's status says nothing when the
	// proxy still sends traffic to the other one.
	if got := res.Header.Get("X-Oops-Color"); got != string(c) {
		return fmt.Errorf("GET %s answered by %q, not %s", url, got, c)
	}
	if err == nil && cerr == nil {
		t.awaitCounted(ctx, c, before.Requests)
	}
	return err
}

// awaitCounted waits, briefly, until the proxy has counted more than n
// requests on c. The proxy counts a request once its answer went out, so
// the client may read the answer first: a bake starting right after Verify
// would count Verify's own probe, and judge a color nobody uses on it.
func (t *Target) awaitCounted(ctx context.Context, c release.Color, n uint64) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		now, err := t.Counts(ctx, c)
		if err != nil || now.Requests > n {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// dialable turns a listen address into one to connect to: an unspecified
// host (":8080", "0.0.0.0:8080", "[::]:8080") means this host's loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Repair has nothing to finish: a local switch is one atomic rename. It
// checks that the persisted state is readable.
func (t *Target) Repair(ctx context.Context) (string, error) {
	if _, _, err := t.live(ctx, false); err != nil {
		return "", err
	}
	return "", nil
}

// SetCommit records which commit color c runs.
func (t *Target) SetCommit(ctx context.Context, c release.Color, commit string) error {
	rec, err := readColor(t.opts.StateDir, c, t.port(c))
	if err != nil {
		return err
	}
	rec.Commit = commit
	if err := ensureDir(t.opts.StateDir); err != nil {
		return err
	}
	return t.saveColor(ctx, rec)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// removeQuiet removes a path, ignoring errors: used for leftovers.
func removeQuiet(p string) { _ = os.RemoveAll(p) }

var _ target.Counter = (*Target)(nil)

// Counts reads color c's request counts since the proxy started (the
// bake's measurements); with no proxy running, an error that says so.
func (t *Target) Counts(ctx context.Context, c release.Color) (*target.Counts, error) {
	m, err := t.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	cm, ok := m.Colors[c]
	if !ok {
		return nil, fmt.Errorf("read request metrics: the proxy counts no color %q", c)
	}
	return &target.Counts{
		Requests:     cm.Total.Count(),
		ServerErrors: cm.Total.ByClass[className(class5xx)],
		Bounds:       m.BucketBounds,
		Buckets:      cm.Total.Buckets,
	}, nil
}
