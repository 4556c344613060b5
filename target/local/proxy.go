package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// ProxyOptions configure a Proxy.
type ProxyOptions struct {
	// StateDir holds the live color, the admin socket and the lock.
	StateDir string
	// Ports of the two colors, on 127.0.0.1.
	BluePort, GreenPort int
	// HealthPath is checked on each color, e.g. /healthcheck.
	HealthPath string
	// DrainTimeout is how long requests in flight on a color a listener
	// stopped sending to may take to finish before they are cut.
	DrainTimeout time.Duration
	// CheckInterval is the time between health checks (default 2s);
	// CheckTimeout bounds each one (default 2s).
	CheckInterval, CheckTimeout time.Duration
	// MaxConnections caps the client connections open at once, on the
	// public and preview listeners together; past it new ones are closed
	// at once. 0: DefaultMaxConnections. Either way it is lowered to what
	// the descriptor limit allows, keeping a reserve for the admin socket
	// and health checks, and an app connection for each client's request.
	MaxConnections int
	// HeaderTimeout bounds reading a request head once its first byte came
	// (then 408); BodyTimeout is the longest a request body may stall
	// (408); WriteTimeout the longest a client may stop reading a
	// response. IdleTimeout closes a kept-alive connection with no new
	// request. Upgraded connections (WebSockets) have none of them.
	HeaderTimeout, BodyTimeout, WriteTimeout, IdleTimeout time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For, -Host, -Proto
	// and Forwarded headers are kept and extended; from any other peer
	// they are replaced with what the proxy saw. Nil: loopback only
	// (DefaultTrustedProxies); empty: nobody.
	TrustedProxies []netip.Prefix
	// UpstreamTimeout is how long the app may take to start its answer
	// once it has the whole request (default DefaultUpstreamTimeout):
	// after that the client gets 504.
	UpstreamTimeout time.Duration
	// idleGrace is how long an idle connection waits in its goroutine
	// before it is parked without one (0: defaultIdleGrace); for tests.
	idleGrace time.Duration
	// beforeForward, when set, sees each routed request first; for tests.
	beforeForward func(method, target []byte)
	// beforeCount, when set, runs after a routed request's answer went
	// out and before the metrics count it; for tests.
	beforeCount func(target []byte)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logf receives one line per event worth knowing (default: discard).
	Logf func(format string, args ...any)
}

// Listeners are what a Proxy serves on. Public is required; Preview is
// optional; Admin, when nil, is the unix socket in the state directory.
// Metrics, optional, serves the Prometheus text format at /metrics.
type Listeners struct {
	Public, Preview, Admin net.Listener
	Metrics                net.Listener
}

// Proxy forwards its public listener to the live color and its preview
// listener to the off color. A switch is one atomic pointer swap: requests
// that arrive afterwards go to the new color, requests already in flight
// finish where they started (up to the drain timeout).
type Proxy struct {
	opts        ProxyOptions
	backends    map[release.Color]*backend
	probeClient *http.Client
	live        *front
	preview     *front
	lockFile    *os.File
	started     time.Time
	acceptLog   atomic.Int64
	// copyBufs are the buffers bodies are copied through; connBufs a
	// client connection's buffers while it carries a request.
	copyBufs, connBufs sync.Pool

	// fds is the descriptor limit (0: unknown), fdsRaisedFrom the soft
	// limit before the proxy raised it (0: not raised); maxConns the cap
	// on client connections, open how many there are, refused how many
	// were closed at the cap.
	fds, fdsRaisedFrom uint64
	maxConns           int
	open, refused      atomic.Int64
	capLog             atomic.Int64
	// panics counts connections ended by a panic in the data path.
	panics   atomic.Int64
	panicLog atomic.Int64

	mu        sync.Mutex // serialises switches and drains
	liveColor release.Color
	since     time.Time
	// generation is the highest lock generation a switch or drain carried:
	// one carrying less comes from a holder that lost the lock since.
	generation int64
	retiring   map[*route]struct{}

	addrMu                  sync.Mutex
	publicAddr, previewAddr string
	adminSock               string
	serving                 atomic.Bool
}

// backend is one color: where it listens and the idle connections to it.
type backend struct {
	color  release.Color
	port   int
	pool   *connPool
	health atomic.Pointer[Health]
	errLog atomic.Int64
	// metrics count the requests this color served, on every listener.
	metrics colorMetrics
}

// route is one listener's assignment to one color. A switch replaces the
// route; the old one drains: its in-flight count falls to zero, or at the
// drain timeout what is left is cut.
type route struct {
	b        *backend
	inflight atomic.Int64
	// cut counts the requests cut on this route at the drain timeout.
	cut      atomic.Int64
	retired  atomic.Bool
	idleOnce sync.Once
	idle     chan struct{}
}

// front is one listener (public or preview), its current route, and the
// server that serves it (nil until Serve).
type front struct {
	name string
	cur  atomic.Pointer[route]
	srv  atomic.Pointer[server]
	// canary, while share is more than 0, takes share percent of the
	// requests (a canary on the public listener); seq spreads them.
	canary atomic.Pointer[route]
	share  atomic.Int32
	seq    atomic.Uint64
}

// ErrProxyRunning: another proxy already serves this state directory.
var ErrProxyRunning = errors.New("another oops proxy is running")

// NewProxy opens the state directory, takes its lock (one proxy per state
// directory) and restores the persisted live color.
func NewProxy(opts ProxyOptions) (*Proxy, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 2 * time.Second
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 2 * time.Second
	}
	if opts.HealthPath == "" {
		opts.HealthPath = DefaultHealthPath
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&opts.HeaderTimeout, DefaultHeaderTimeout}, {&opts.BodyTimeout, DefaultBodyTimeout}, {&opts.WriteTimeout, DefaultWriteTimeout}, {&opts.IdleTimeout, DefaultIdleTimeout}, {&opts.UpstreamTimeout, DefaultUpstreamTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if opts.TrustedProxies == nil {
		opts.TrustedProxies = DefaultTrustedProxies()
	}
	if opts.BluePort <= 0 || opts.GreenPort <= 0 || opts.BluePort == opts.GreenPort {
		return nil, fmt.Errorf("blue and green need two different ports, got %d and %d", opts.BluePort, opts.GreenPort)
	}
	if err := ensureDir(opts.StateDir); err != nil {
		return nil, err
	}
	if err := CheckStateDir(opts.StateDir); err != nil {
		return nil, err
	}
	lf, held, err := tryLock(filepath.Join(opts.StateDir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	if !held {
		pid, _ := os.ReadFile(filepath.Join(opts.StateDir, lockFile))
		return nil, fmt.Errorf("%w for %s (pid %s): stop it first, or give this one another state-dir", ErrProxyRunning, opts.StateDir, trimSpace(pid))
	}
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	ls, err := readLive(opts.StateDir)
	if err != nil {
		lf.Close()
		return nil, err
	}
	p := &Proxy{
		opts:       opts,
		lockFile:   lf,
		started:    opts.Now(),
		liveColor:  ls.Live,
		since:      ls.Since,
		generation: ls.Generation,
		retiring:   map[*route]struct{}{},
		live:       &front{name: "public"},
		preview:    &front{name: "preview"},
	}
	p.probeClient = health.Client(opts.CheckTimeout)
	p.copyBufs.New = func() any { b := make([]byte, copyBuf); return &b }
	p.connBufs.New = func() any {
		return &connBufs{br: bufio.NewReaderSize(nil, clientReadBuf), bw: bufio.NewWriterSize(nil, clientWriteBuf)}
	}
	p.fds, p.fdsRaisedFrom = raiseOpenFiles()
	maxConns, idle := connLimits(p.fds, opts.MaxConnections)
	p.maxConns = maxConns
	p.backends = map[release.Color]*backend{
		release.Blue:  p.newBackend(release.Blue, opts.BluePort, idle),
		release.Green: p.newBackend(release.Green, opts.GreenPort, idle),
	}
	p.live.cur.Store(p.newRoute(ls.Live))
	p.preview.cur.Store(p.newRoute(ls.Live.Other()))
	return p, nil
}

func trimSpace(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	if s == "" {
		return "unknown"
	}
	return s
}

func (p *Proxy) newBackend(c release.Color, port, maxIdle int) *backend {
	b := &backend{color: c, port: port, pool: &connPool{addr: hostPort(port), maxIdle: maxIdle}}
	b.metrics.init(time.Now())
	return b
}

// fdReserve are the descriptors client connections never get: the admin
// socket and its connections, health checks, listeners, state files, and
// metrics-listen's connections (metricsMaxConns).
const fdReserve = 64

// connLimits splits the descriptor limit fds (0: unknown) between client
// connections, each of which needs an app connection for its request,
// and the idle app connections kept per color. want is max-connections
// (0: the default); the cap is lowered to what fits.
func connLimits(fds uint64, want int) (maxConns, maxIdle int) {
	if want <= 0 {
		want = DefaultMaxConnections
	}
	if fds == 0 || fds > 1<<30 {
		return want, maxIdleConns
	}
	budget := max(int(fds)-fdReserve, 4)
	maxIdle = min(maxIdleConns, max(budget/8, 1))
	fit := max((budget-2*maxIdle)/2, 1)
	return min(want, fit), maxIdle
}

func (p *Proxy) newRoute(c release.Color) *route {
	return &route{b: p.backends[c], idle: make(chan struct{})}
}

// cut ends what is still in flight on rt, on every listener.
func (p *Proxy) cut(rt *route) int {
	n := 0
	for _, f := range []*front{p.live, p.preview} {
		if s := f.srv.Load(); s != nil {
			n += s.cut(rt)
		}
	}
	return n
}

func (rt *route) done() {
	if rt.inflight.Add(-1) == 0 && rt.retired.Load() {
		rt.idleOnce.Do(func() { close(rt.idle) })
	}
}

func (rt *route) retire() {
	rt.retired.Store(true)
	if rt.inflight.Load() == 0 {
		rt.idleOnce.Do(func() { close(rt.idle) })
	}
}

// acquire returns the front's current route with the request counted in it.
// A route retired between the load and the count is given back and the
// new one taken, so a drain never misses a request.
func (f *front) acquire() *route {
	cur := &f.cur
	// Every request is routed on its own: share percent of them, evenly
	// spread (37 is prime to 100), go to the canary.
	if w := f.share.Load(); w > 0 && f.canary.Load() != nil && int32(f.seq.Add(1)*37%100) < w {
		cur = &f.canary
	}
	for {
		rt := cur.Load()
		if rt == nil {
			rt = f.cur.Load() // the canary ended between the two loads
		}
		rt.inflight.Add(1)
		if !rt.retired.Load() {
			return rt
		}
		rt.done()
	}
}

// Live returns the color the public listener sends to.
func (p *Proxy) Live() release.Color {
	return p.live.cur.Load().b.color
}

// errConflict: the live color is not the one the caller expected.
var errConflict = errors.New("live color changed")

// Switch sends new requests on the public listener to color to (and the
// preview listener to the other). The new color is persisted before the
// swap: if this fails, nothing changed. from, when set, must be the live
// color (compare-and-swap against a concurrent switch).
func (p *Proxy) Switch(to, from release.Color) (release.Color, error) {
	return p.SwitchFenced(to, from, 0)
}

// SwitchFenced is Switch for the holder of lock generation gen: it is
// refused (target.ErrFenced) when a switch or drain of a later generation
// was applied, because its sender lost the lock in between. 0 is no
// generation (oops rollback --no-lock, tests) and is not checked.
func (p *Proxy) SwitchFenced(to, from release.Color, gen int64) (release.Color, error) {
	if !to.Valid() {
		return "", fmt.Errorf("switch: %q is not a color", to)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.liveColor
	if err := p.fenceLocked(gen); err != nil {
		return prev, err
	}
	if from != "" && from != prev {
		return prev, fmt.Errorf("%w: expected %s live, found %s", errConflict, from, prev)
	}
	if to == prev {
		p.endCanaryLocked()
		return prev, nil
	}
	p.endCanaryLocked()
	now := p.opts.Now()
	newGen := max(p.generation, gen)
	if err := writeLive(p.opts.StateDir, liveState{Live: to, Since: now, Generation: newGen}); err != nil {
		return prev, fmt.Errorf("persist live color: %w", err)
	}
	p.liveColor, p.since, p.generation = to, now, newGen
	oldLive := p.live.cur.Swap(p.newRoute(to))
	oldPrev := p.preview.cur.Swap(p.newRoute(prev))
	p.retireLocked(oldLive, p.live.name)
	p.retireLocked(oldPrev, p.preview.name)
	p.opts.Logf("switched: %s -> %s (port %d)", prev, to, p.backends[to].port)
	return prev, nil
}

// SplitFenced sends weight percent (1-99) of the public listener's new
// requests to color to, the other color than the live one, request by
// request; the live color keeps the rest (a canary). 0 ends the canary.
// The split is not persisted: a restarted proxy sends everything to the
// live color.
func (p *Proxy) SplitFenced(to release.Color, weight int, gen int64) error {
	if !to.Valid() || weight < 0 || weight > 99 {
		return fmt.Errorf("split: %q %d%% is not a color and a share of 0 to 99", to, weight)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fenceLocked(gen); err != nil {
		return err
	}
	if to == p.liveColor {
		return fmt.Errorf("%w: %s is live; a canary goes to the other color", errConflict, to)
	}
	p.generation = max(p.generation, gen)
	if weight == 0 {
		p.endCanaryLocked()
		return nil
	}
	old := p.live.canary.Swap(p.newRoute(to))
	p.live.share.Store(int32(weight))
	if old != nil {
		p.retireLocked(old, p.live.name)
	}
	p.opts.Logf("split: %d%% to %s (port %d), %d%% to %s", weight, to, p.backends[to].port, 100-weight, p.liveColor)
	return nil
}

// Split is the public listener's canary: the color and its share (0: none).
func (p *Proxy) Split() (release.Color, int) {
	w := p.live.share.Load()
	rt := p.live.canary.Load()
	if w == 0 || rt == nil {
		return "", 0
	}
	return rt.b.color, int(w)
}

// endCanaryLocked sends all of the public listener to its live color.
func (p *Proxy) endCanaryLocked() {
	p.live.share.Store(0)
	if old := p.live.canary.Swap(nil); old != nil {
		p.retireLocked(old, p.live.name)
		p.opts.Logf("split ended: all traffic to %s", p.liveColor)
	}
}

// retireLocked starts draining rt: once idle it is forgotten; at the drain
// timeout whatever is still in flight on it is cut.
func (p *Proxy) retireLocked(rt *route, front string) {
	rt.retire()
	p.retiring[rt] = struct{}{}
	go func() {
		t := time.NewTimer(p.opts.DrainTimeout)
		defer t.Stop()
		select {
		case <-rt.idle:
		case <-t.C:
			if n := p.cut(rt); n > 0 {
				p.opts.Logf("drain: cut %d request(s) still on %s via the %s listener after %s", n, rt.b.color, front, p.opts.DrainTimeout)
			}
		}
		p.mu.Lock()
		delete(p.retiring, rt)
		p.mu.Unlock()
	}()
}

// Drain stops every listener from sending to color c (which must be off),
// waits up to the drain timeout for what is in flight there to finish, and
// cuts the rest. Deploys call it before stopping c's process. It returns
// how many requests were cut.
func (p *Proxy) Drain(ctx context.Context, c release.Color) (int, error) {
	return p.DrainFenced(ctx, c, 0)
}

// fenceLocked refuses generation gen when a later one was applied, and
// remembers gen otherwise (in memory; a switch persists it).
func (p *Proxy) fenceLocked(gen int64) error {
	if gen == 0 {
		return nil
	}
	if gen < p.generation {
		return fmt.Errorf("%w: the proxy obeyed lock generation %d since; this command holds %d", target.ErrFenced, p.generation, gen)
	}
	return nil
}

// DrainFenced is Drain for the holder of lock generation gen (see SwitchFenced).
func (p *Proxy) DrainFenced(ctx context.Context, c release.Color, gen int64) (int, error) {
	p.mu.Lock()
	if err := p.fenceLocked(gen); err != nil {
		p.mu.Unlock()
		return 0, err
	}
	if c == p.liveColor {
		p.mu.Unlock()
		return 0, fmt.Errorf("%w: %s is live; refusing to drain it", errConflict, c)
	}
	if cc, _ := p.Split(); cc == c {
		p.mu.Unlock()
		return 0, fmt.Errorf("%w: %s takes a canary's share of the traffic; refusing to drain it", errConflict, c)
	}
	if gen > p.generation {
		// Persisted like a switch's, so a restarted proxy still fences
		// out the holders before this one.
		if err := writeLive(p.opts.StateDir, liveState{Live: p.liveColor, Since: p.since, Generation: gen}); err != nil {
			p.mu.Unlock()
			return 0, fmt.Errorf("persist lock generation: %w", err)
		}
		p.generation = gen
	}
	// The preview listener keeps pointing at c, through a fresh route, so
	// only what is in flight now is waited for.
	if old := p.preview.cur.Load(); old.b.color == c {
		p.preview.cur.Store(p.newRoute(c))
		p.retireLocked(old, p.preview.name)
	}
	var rts []*route
	for rt := range p.retiring {
		if rt.b.color == c {
			rts = append(rts, rt)
		}
	}
	p.mu.Unlock()
	t := time.NewTimer(p.opts.DrainTimeout)
	defer t.Stop()
	// Whoever cuts a route (this timer or the route's own), it is counted.
	cut := func() int {
		n := 0
		for _, rt := range rts {
			n += int(rt.cut.Load())
		}
		return n
	}
	for _, rt := range rts {
		select {
		case <-rt.idle:
		case <-ctx.Done():
			return cut(), ctx.Err()
		case <-t.C:
			for _, r := range rts {
				p.cut(r)
			}
			return cut(), nil
		}
	}
	return cut(), nil
}

// InFlight counts the requests on color c across listeners, draining or not.
func (p *Proxy) InFlight(c release.Color) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := int64(0)
	for _, rt := range []*route{p.live.cur.Load(), p.preview.cur.Load(), p.live.canary.Load()} {
		if rt != nil && rt.b.color == c {
			n += rt.inflight.Load()
		}
	}
	for rt := range p.retiring {
		if rt.b.color == c {
			n += rt.inflight.Load()
		}
	}
	return int(n)
}

// checkHealth probes each color every CheckInterval until ctx ends, and logs
// changes.
func (p *Proxy) checkHealth(ctx context.Context) {
	p.CheckNow(ctx)
	t := time.NewTicker(p.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.CheckNow(ctx)
		}
	}
}

// CheckNow checks both colors at once and records the results; oops status
// asks for it so it never shows a result older than a deploy.
func (p *Proxy) CheckNow(ctx context.Context) {
	var wg sync.WaitGroup
	for _, b := range p.backends {
		wg.Go(func() { p.checkOne(ctx, p.probeClient, b) })
	}
	wg.Wait()
}

func (p *Proxy) checkOne(ctx context.Context, hc *http.Client, b *backend) {
	start := time.Now()
	status, err := probe(ctx, hc, b.port, p.opts.HealthPath)
	if ctx.Err() != nil {
		return
	}
	h := &Health{Healthy: err == nil, Checked: p.opts.Now(), Status: status,
		LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		h.Error = err.Error()
	}
	prev := b.health.Load()
	h.Since = h.Checked
	if prev != nil && prev.Healthy == h.Healthy {
		h.Since = prev.Since
	}
	b.health.Store(h)
	if prev == nil || prev.Healthy != h.Healthy {
		if h.Healthy {
			p.opts.Logf("health: %s (port %d) is healthy", b.color, b.port)
		} else if prev != nil || p.Live() == b.color {
			p.opts.Logf("health: %s (port %d) is unhealthy: %s", b.color, b.port, h.Error)
		}
	}
}

// Serve runs the proxy until ctx ends, then shuts down: listeners close,
// in-flight requests get the drain timeout to finish, the lock is released.
func (p *Proxy) Serve(ctx context.Context, ls Listeners) error {
	if ls.Public == nil {
		return errors.New("serve proxy: no public listener")
	}
	if !p.serving.CompareAndSwap(false, true) {
		return errors.New("serve proxy: already serving")
	}
	defer p.Close()
	admin := ls.Admin
	if admin == nil {
		var err error
		if admin, err = p.listenAdmin(); err != nil {
			return err
		}
	}
	p.addrMu.Lock()
	p.publicAddr = ls.Public.Addr().String()
	if ls.Preview != nil {
		p.previewAddr = ls.Preview.Addr().String()
	}
	p.addrMu.Unlock()

	hctx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	go p.checkHealth(hctx)

	pub := newServer(p, p.live)
	p.live.srv.Store(pub)
	servers, listeners := []*server{pub}, []net.Listener{ls.Public}
	if ls.Preview != nil {
		prev := newServer(p, p.preview)
		p.preview.srv.Store(prev)
		servers = append(servers, prev)
		listeners = append(listeners, ls.Preview)
	}
	adminSrv := &http.Server{Handler: p.adminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(logfWriter(p.opts.Logf), "", 0)}

	errc := make(chan error, len(servers)+1)
	for i, s := range servers {
		go func() { errc <- s.serve(listeners[i]) }()
	}
	go func() { errc <- adminSrv.Serve(admin) }()
	var metricsSrv *http.Server
	if ls.Metrics != nil {
		metricsSrv = p.metricsServer()
		go func() {
			// Traffic goes on without metrics: a failure is logged, no more.
			if err := metricsSrv.Serve(&capListener{Listener: ls.Metrics, max: metricsMaxConns}); !errors.Is(err, http.ErrServerClosed) {
				p.opts.Logf("metrics: %s: %v", ls.Metrics.Addr(), err)
			}
		}()
		p.opts.Logf("metrics: http://%s/metrics (Prometheus)", ls.Metrics.Addr())
	}
	p.mu.Lock()
	live, since := p.liveColor, p.since
	p.mu.Unlock()
	p.opts.Logf("proxy: %s -> %s (port %d), live since %s", ls.Public.Addr(), live, p.backends[live].port, fmtSince(since))
	p.logLimits()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve proxy: %w", err)
	}
	// Stop accepting, let what is in flight finish (up to the drain
	// timeout), then cut the rest, WebSockets included.
	for _, l := range listeners {
		l.Close()
	}
	_ = adminSrv.Close()
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { s.shutdown(p.opts.DrainTimeout) })
	}
	wg.Wait()
	for _, b := range p.backends {
		b.pool.closeIdle()
	}
	return err
}

// logLimits says what the proxy will take, and why.
func (p *Proxy) logLimits() {
	fds := "unknown"
	if p.fds > 0 {
		fds = strconv.FormatUint(p.fds, 10)
		if p.fdsRaisedFrom > 0 {
			fds += fmt.Sprintf(" (raised from %d)", p.fdsRaisedFrom)
		}
	}
	p.opts.Logf("proxy: open files limit %s; max-connections %d; header-timeout %s, body-timeout %s, write-timeout %s, idle %s",
		fds, p.maxConns, p.opts.HeaderTimeout, p.opts.BodyTimeout, p.opts.WriteTimeout, p.opts.IdleTimeout)
	if want := p.opts.MaxConnections; want > p.maxConns {
		p.opts.Logf("proxy: warning: max-connections %d does not fit the open files limit %d (each connection needs two, and %d are kept for the admin socket and health checks): using %d; raise the limit (ulimit -n, LimitNOFILE=) for more",
			want, p.fds, fdReserve, p.maxConns)
	}
}

func fmtSince(t time.Time) string {
	if t.IsZero() {
		return "the start"
	}
	return t.Format(time.RFC3339)
}

// listenAdmin opens the admin socket, readable and writable by this user
// only. Holding the lock makes removing a stale socket safe.
func (p *Proxy) listenAdmin() (net.Listener, error) {
	sock := filepath.Join(p.opts.StateDir, socketFile)
	if len(sock) > 100 {
		return nil, fmt.Errorf("admin socket path %s is too long for a unix socket (%d bytes): use a shorter state-dir", sock, len(sock))
	}
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restrict admin socket: %w", err)
	}
	p.addrMu.Lock()
	p.adminSock = sock
	p.addrMu.Unlock()
	return l, nil
}

// Close releases the state directory. Serve calls it when it returns.
func (p *Proxy) Close() error {
	p.addrMu.Lock()
	sock := p.adminSock
	p.adminSock = ""
	p.addrMu.Unlock()
	if sock != "" {
		_ = os.Remove(sock)
	}
	if p.lockFile != nil {
		err := p.lockFile.Close()
		p.lockFile = nil
		return err
	}
	return nil
}

// logfWriter adapts Logf to the io.Writer log.Logger wants.
type logfWriter func(string, ...any)

func (f logfWriter) Write(b []byte) (int, error) {
	s := string(b)
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	f("%s", s)
	return len(b), nil
}
