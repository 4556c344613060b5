package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/testport"
	"github.com/oops-deploy/oops/release"
)

// colorServer is a stand-in app on 127.0.0.1 that names its color.
func colorServer(t *testing.T, color string, h http.Handler) (port int) {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, color) })
	}
	// The proxy's health checks get their own answer, so handlers under
	// test only see the test's requests.
	mux := http.NewServeMux()
	mux.HandleFunc("/healthcheck", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.Handle("/", h)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port
}

// freePort returns a loopback port nothing listens on (for a color that is
// down, or one a test starts later), held for the test alone.
func freePort(t testing.TB) int {
	t.Helper()
	return testport.Get(t)
}

type runningProxy struct {
	p    *Proxy
	url  string
	prev string
	// metrics is the base URL of the Prometheus listener.
	metrics string
	cancel  context.CancelFunc
	done    chan struct{} // closed when Serve returned, with err set
	err     error
}

// stop shuts the proxy down and waits for Serve to return.
func (rp *runningProxy) stop(t *testing.T) {
	t.Helper()
	rp.cancel()
	select {
	case <-rp.done:
		if rp.err != nil {
			t.Errorf("serve: %v", rp.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not stop")
	}
}

// startProxy serves a proxy over dir on fresh loopback listeners.
func startProxy(t testing.TB, opts ProxyOptions) *runningProxy {
	t.Helper()
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = 50 * time.Millisecond
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	p, err := NewProxy(opts)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	prev, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	met, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rp := &runningProxy{p: p, url: "http://" + pub.Addr().String(), prev: "http://" + prev.Addr().String(),
		metrics: "http://" + met.Addr().String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		rp.err = p.Serve(ctx, Listeners{Public: pub, Preview: prev, Metrics: met})
		close(rp.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-rp.done
	})
	// Serve is up once the admin socket answers.
	c := newAdminClient(opts.StateDir)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.status(ctx, false); err == nil {
			return rp
		}
		if time.Now().After(deadline) {
			t.Fatal("proxy admin socket never answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, c *http.Client, url string) (string, http.Header) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, res.Status, b)
	}
	return string(b), res.Header
}

func TestProxySwitchesAtomicallyAndRemembersAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := ProxyOptions{StateDir: dir, BluePort: colorServer(t, "blue", nil), GreenPort: colorServer(t, "green", nil)}
	rp := startProxy(t, opts)

	if body, h := get(t, nil, rp.url); body != "blue" || h.Get("X-Oops-Color") != "blue" {
		t.Fatalf("fresh proxy: got %q (X-Oops-Color %q), want blue", body, h.Get("X-Oops-Color"))
	}
	if body, _ := get(t, nil, rp.prev); body != "green" {
		t.Fatalf("preview before switch: got %q, want the off color green", body)
	}
	if _, err := rp.p.Switch(release.Green, release.Blue); err != nil {
		t.Fatal(err)
	}
	// No waiting: the very next request goes to the new color.
	if body, _ := get(t, nil, rp.url); body != "green" {
		t.Fatalf("after switch: got %q, want green", body)
	}
	if body, _ := get(t, nil, rp.prev); body != "blue" {
		t.Fatalf("preview after switch: got %q, want blue", body)
	}
	if _, err := rp.p.Switch(release.Blue, release.Blue); !errors.Is(err, errConflict) {
		t.Fatalf("switch with a stale expected color: err = %v, want a conflict", err)
	}

	rp.stop(t)
	rp2 := startProxy(t, opts)
	if body, _ := get(t, nil, rp2.url); body != "green" {
		t.Fatalf("after restart: got %q, want green (the persisted live color)", body)
	}
}

func TestProxyKeepAliveConnectionFollowsSwitch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: colorServer(t, "blue", nil), GreenPort: colorServer(t, "green", nil)})
	// One connection for everything: a switch must not break it.
	conns := 0
	tr := &http.Transport{MaxConnsPerHost: 1, DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		conns++
		return (&net.Dialer{}).DialContext(ctx, n, a)
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	want := []string{"blue", "green", "blue", "green"}
	for i, w := range want {
		if body, _ := get(t, c, rp.url); body != w {
			t.Fatalf("request %d: got %q, want %q", i, body, w)
		}
		if _, err := rp.p.Switch(release.Color(w).Other(), ""); err != nil {
			t.Fatal(err)
		}
	}
	if conns != 1 {
		t.Fatalf("client dialed %d connections, want 1 kept alive across switches", conns)
	}
}

func TestProxyInFlightRequestFinishesOnOldColor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	started, release_ := make(chan struct{}), make(chan struct{})
	blue := colorServer(t, "blue", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release_
		}
		fmt.Fprint(w, "blue")
	}))
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: blue, GreenPort: colorServer(t, "green", nil)})

	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		r, err := http.Get(rp.url + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		res <- result{string(b), err}
	}()
	<-started
	if _, err := rp.p.Switch(release.Green, ""); err != nil {
		t.Fatal(err)
	}
	if body, _ := get(t, nil, rp.url); body != "green" {
		t.Fatalf("new request after switch: got %q, want green", body)
	}
	if n := rp.p.InFlight(release.Blue); n != 1 {
		t.Fatalf("in flight on blue = %d, want 1 (draining)", n)
	}
	close(release_)
	r := <-res
	if r.err != nil || r.body != "blue" {
		t.Fatalf("in-flight request: body %q, err %v; want it to finish on blue", r.body, r.err)
	}
}

func TestProxyDrainTimeoutCutsWhatIsLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	started := make(chan struct{})
	blue := colorServer(t, "blue", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done() // never answers on its own
	}))
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: blue, GreenPort: colorServer(t, "green", nil), DrainTimeout: 200 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		r, err := http.Get(rp.url + "/hang")
		if err == nil {
			_, err = io.ReadAll(r.Body)
			r.Body.Close()
			if err == nil && r.StatusCode == http.StatusOK {
				err = errors.New("hanging request answered 200")
			}
		}
		errc <- err
	}()
	<-started
	if _, err := rp.p.Switch(release.Green, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-errc: // cut: a 502 or a broken response, either way it ended
	case <-time.After(5 * time.Second):
		t.Fatal("request on the old color was not cut after the drain timeout")
	}
	// The metrics count it as cut, for the color it was on.
	m := waitCounts(t, dir, map[release.Color]byClass{release.Blue: {"cut": 1}, release.Green: {}})
	if s := m.Colors[release.Blue].Summary; s.Cut != 1 || s.Requests != 1 {
		t.Errorf("blue: last minute %+v, want 1 cut request", s)
	}
}

func TestProxyStreamingResponseSurvivesSwitch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	next := make(chan struct{})
	blue := colorServer(t, "blue", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i)
			_ = rc.Flush()
			<-next
		}
	}))
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: blue, GreenPort: colorServer(t, "green", nil)})
	res, err := http.Get(rp.url + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		// Each line arrives before the app writes the next: flushed through.
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("line %d\n", i) {
			t.Fatalf("line %d: %q, %v", i, line, err)
		}
		if i == 0 {
			if _, err := rp.p.Switch(release.Green, ""); err != nil {
				t.Fatal(err)
			}
		}
		next <- struct{}{}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("end of stream: %q, %v", rest, err)
	}
}

// upgradeEcho accepts "Upgrade: echo" and echoes lines prefixed with color.
func upgradeEcho(color string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			fmt.Fprint(w, color)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprintf(brw, "%s %s", color, line)
			brw.Flush()
		}
	})
}

func TestProxyUpgradedConnectionSurvivesSwitch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: colorServer(t, "blue", upgradeEcho("blue")), GreenPort: colorServer(t, "green", upgradeEcho("green"))})
	conn, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through proxy: %v, %v", res, err)
	}
	say := func(msg string) string {
		fmt.Fprintf(conn, "%s\n", msg)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("echo %q: %v", msg, err)
		}
		return strings.TrimSpace(line)
	}
	if got := say("one"); got != "blue one" {
		t.Fatalf("before switch: %q", got)
	}
	if _, err := rp.p.Switch(release.Green, ""); err != nil {
		t.Fatal(err)
	}
	if got := say("two"); got != "blue two" {
		t.Fatalf("after switch the open connection should stay on blue: %q", got)
	}
	if body, _ := get(t, nil, rp.url); body != "green" {
		t.Fatalf("new request: %q, want green", body)
	}
}

func TestProxyAdminSocketIsPrivateAndSwitches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	green := colorServer(t, "green", nil)
	startProxy(t, ProxyOptions{StateDir: dir, BluePort: freePort(t), GreenPort: green})
	fi, err := os.Stat(filepath.Join(dir, socketFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("admin socket mode %o, want 600", perm)
	}
	c := newAdminClient(dir)
	ctx := context.Background()
	// Health is checked per color: blue's port is closed, green answers.
	st, err := c.status(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if h := st.Colors[release.Blue].Health; h.Healthy || h.Error == "" {
		t.Errorf("blue (nothing listening): %+v, want unhealthy with a reason", h)
	}
	if h := st.Colors[release.Green].Health; !h.Healthy {
		t.Errorf("green: %+v, want healthy", h)
	}
	if _, err := c.switchTo(ctx, release.Green, release.Green, 0); !errors.Is(err, errConflict) {
		t.Fatalf("switch expecting green live: %v, want conflict", err)
	}
	if st, err = c.switchTo(ctx, release.Green, release.Blue, 0); err != nil || st.Live != release.Green {
		t.Fatalf("switch: %+v, %v", st, err)
	}
	if _, err := c.drain(ctx, release.Green); !errors.Is(err, errConflict) {
		t.Fatalf("drain of the live color: %v, want refused", err)
	}
	if n, err := c.drain(ctx, release.Blue); err != nil || n != 0 {
		t.Fatalf("drain of idle blue: %d, %v", n, err)
	}
	ls, err := readLive(dir)
	if err != nil || ls.Live != release.Green {
		t.Fatalf("persisted live color: %+v, %v", ls, err)
	}
}

func TestProxyOnePerStateDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := ProxyOptions{StateDir: dir, BluePort: freePort(t), GreenPort: freePort(t)}
	p, err := NewProxy(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := NewProxy(opts); !errors.Is(err, ErrProxyRunning) {
		t.Fatalf("second proxy on the same state dir: %v, want ErrProxyRunning", err)
	}
	p.Close()
	p2, err := NewProxy(opts)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	p2.Close()
}

func TestProxyRejectsCorruptLiveFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, liveFile), []byte(`{"live":"purple"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewProxy(ProxyOptions{StateDir: dir, BluePort: 1, GreenPort: 2})
	if err == nil || !strings.Contains(err.Error(), "purple") {
		t.Fatalf("err = %v, want it to name the bad color", err)
	}
}

func TestProxyDrainWaitsForTheOffColorThenCuts(t *testing.T) {
	t.Parallel()
	release_ := make(chan struct{})
	started := make(chan string, 2)
	blue := colorServer(t, "blue", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
			return
		}
		<-release_
		fmt.Fprint(w, "blue")
	}))
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: blue, GreenPort: colorServer(t, "green", nil), DrainTimeout: 300 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		res, err := http.Get(rp.url + "/slow")
		if err == nil {
			_, err = io.ReadAll(res.Body)
			res.Body.Close()
		}
		done <- err
	}()
	<-started
	if _, err := rp.p.Switch(release.Green, ""); err != nil {
		t.Fatal(err)
	}
	// Drain waits for the request in flight on blue...
	drained := make(chan int, 1)
	go func() {
		n, err := rp.p.Drain(context.Background(), release.Blue)
		if err != nil {
			t.Error(err)
		}
		drained <- n
	}()
	select {
	case <-drained:
		t.Fatal("Drain returned while a request was still in flight on blue")
	case <-time.After(100 * time.Millisecond):
	}
	close(release_)
	if n := <-drained; n != 0 {
		t.Fatalf("Drain cut %d requests that finished in time", n)
	}
	if err := <-done; err != nil {
		t.Fatalf("the drained request failed: %v", err)
	}
	// ... and cuts what does not finish within the drain timeout (here a
	// request through the preview listener, which points at blue now).
	go func() {
		res, err := http.Get(rp.prev + "/hang")
		if err == nil {
			res.Body.Close()
		}
	}()
	<-started
	n, err := rp.p.Drain(context.Background(), release.Blue)
	if err != nil || n != 1 {
		t.Fatalf("Drain with a hanging request: cut %d, %v; want 1 cut", n, err)
	}
}
