package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The proxy's data path: one goroutine per client connection reads a
// request head, picks the route of its listener at that moment (so after a
// switch the very next request, even on a kept-alive connection, goes to
// the new color), forwards the request over a pooled connection to the
// app, and copies the response back as it arrives. Upgrades (WebSockets)
// become a two-way byte tunnel.

const (
	clientReadBuf  = 16 << 10 // also the longest header line accepted
	clientWriteBuf = 8 << 10
	appReadBuf     = 16 << 10
	appWriteBuf    = 8 << 10
	copyBuf        = 32 << 10
	// idleTimeout closes client connections with no request for this long
	// (and bounds how long a request head may take to arrive).
	idleTimeout  = 2 * time.Minute
	maxIdleConns = 1024
	appIdleMax   = 90 * time.Second
)

// appConn is a kept-alive connection to an app.
type appConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

// connPool holds idle connections to one color's app, newest last.
type connPool struct {
	addr string
	mu   sync.Mutex
	idle []*appConn
}

// get returns the most recently used idle connection, else dials a new
// one. With check, an idle connection is only reused if the app has not
// closed it meanwhile (for requests that cannot be sent twice).
func (cp *connPool) get(now time.Time, check bool) (ac *appConn, reused bool, err error) {
	var stale []*appConn
	cp.mu.Lock()
	// Forget connections idle too long (the oldest are first).
	i := 0
	for i < len(cp.idle) && now.Sub(cp.idle[i].lastUsed) > appIdleMax {
		i++
	}
	if i > 0 {
		stale = append(stale, cp.idle[:i]...)
		cp.idle = append(cp.idle[:0], cp.idle[i:]...)
	}
	for n := len(cp.idle); n > 0; n = len(cp.idle) {
		c := cp.idle[n-1]
		cp.idle[n-1] = nil
		cp.idle = cp.idle[:n-1]
		if !check || connAlive(c.c) {
			ac = c
			break
		}
		stale = append(stale, c)
	}
	cp.mu.Unlock()
	for _, s := range stale {
		s.c.Close()
	}
	if ac != nil {
		return ac, true, nil
	}
	c, err := net.DialTimeout("tcp", cp.addr, 5*time.Second)
	if err != nil {
		return nil, false, err
	}
	return &appConn{c: c, br: bufio.NewReaderSize(c, appReadBuf), bw: bufio.NewWriterSize(c, appWriteBuf)}, false, nil
}

func (cp *connPool) put(ac *appConn) {
	cp.mu.Lock()
	if len(cp.idle) < maxIdleConns {
		cp.idle = append(cp.idle, ac)
		ac = nil
	}
	cp.mu.Unlock()
	if ac != nil {
		ac.c.Close()
	}
}

func (cp *connPool) closeIdle() {
	cp.mu.Lock()
	idle := cp.idle
	cp.idle = nil
	cp.mu.Unlock()
	for _, ac := range idle {
		ac.c.Close()
	}
}

// Client connection states, for shutdown.
const (
	connIdle int32 = iota
	connBusy
	connClosed
)

// clientConn is one client connection and its reusable buffers.
type clientConn struct {
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	ip    string
	req   head
	res   head
	out   []byte
	state atomic.Int32
	// route and app are what the request in flight uses, for cutting it.
	route atomic.Pointer[route]
	app   atomic.Pointer[appConn]

	// trusted: the peer is in trusted-proxies, its X-Forwarded-* are kept.
	trusted bool
}

// abort closes the client connection and its app connection, ending the
// request in flight.
func (cc *clientConn) abort() {
	cc.state.Store(connClosed)
	cc.c.Close()
	if ac := cc.app.Load(); ac != nil {
		ac.c.Close()
	}
}

// server serves one listener of the proxy.
type server struct {
	p       *Proxy
	front   *front
	mu      sync.Mutex
	conns   map[*clientConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
}

func newServer(p *Proxy, f *front) *server {
	return &server{p: p, front: f, conns: map[*clientConn]struct{}{}}
}

// serve accepts connections until l is closed.
func (s *server) serve(l net.Listener) error {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.p.logLimited(&s.p.acceptLog, "proxy: accept: %v; retrying in %s", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		cc := &clientConn{c: c}
		if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			cc.ip = host
			cc.trusted = s.p.trusts(host)
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[cc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(cc)
	}
}

// shutdown stops taking requests: idle connections close now, busy ones
// after their response. It waits up to timeout, then cuts what is left.
func (s *server) shutdown(timeout time.Duration) {
	s.mu.Lock()
	s.closing.Store(true)
	for cc := range s.conns {
		if cc.state.CompareAndSwap(connIdle, connClosed) {
			cc.c.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(timeout):
	}
	s.mu.Lock()
	for cc := range s.conns {
		cc.abort()
	}
	s.mu.Unlock()
	<-done
}

// cut aborts the requests in flight on rt (the drain timeout expired).
func (s *server) cut(rt *route) int {
	n := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc := range s.conns {
		if cc.route.Load() == rt {
			// Counted before the abort lets the route go idle.
			rt.cut.Add(1)
			cc.abort()
			n++
		}
	}
	return n
}

func (s *server) serveConn(cc *clientConn) {
	cc.br = bufio.NewReaderSize(cc.c, clientReadBuf)
	cc.bw = bufio.NewWriterSize(cc.c, clientWriteBuf)
	defer func() {
		cc.c.Close()
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	var deadline time.Time // the read deadline in force; zero: none
	for {
		if s.closing.Load() {
			return
		}
		// One deadline covers waiting for a request and reading its head.
		// It is only moved when it comes near, which saves two timer
		// updates per request on a busy connection.
		now := time.Now()
		if deadline.IsZero() || deadline.Sub(now) < idleTimeout/2 {
			deadline = now.Add(idleTimeout)
			_ = cc.c.SetReadDeadline(deadline)
		}
		if _, err := cc.br.Peek(1); err != nil {
			return
		}
		if !cc.state.CompareAndSwap(connIdle, connBusy) {
			return
		}
		if err := cc.req.readRequest(cc.br); err != nil {
			s.badRequest(cc, err)
			return
		}
		if req := &cc.req; req.chunked || req.contentLength > 0 || req.wantsUpgrade() {
			// Bodies and tunnels take as long as they take.
			deadline = time.Time{}
			_ = cc.c.SetReadDeadline(deadline)
		}
		keep := s.forward(cc, now)
		if !keep || !cc.state.CompareAndSwap(connBusy, connIdle) {
			return
		}
	}
}

// badRequest answers a request that could not be read, if there is anyone
// to answer.
func (s *server) badRequest(cc *clientConn, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.As(err, &ne):
		return
	case errors.Is(err, errHeadTooLarge):
		writeStatus(cc.bw, 431, "Request Header Fields Too Large", "request head too large\n")
	case errors.Is(err, errUnsupportedTE):
		writeStatus(cc.bw, 501, "Not Implemented", "unsupported Transfer-Encoding\n")
	default:
		writeStatus(cc.bw, 400, "Bad Request", "malformed request\n")
	}
}

func writeStatus(bw *bufio.Writer, code int, status, body string) {
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, status, len(body), body)
	_ = bw.Flush()
}

func idempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// errRetry: the app connection was found closed before it answered; the
// request can go again on another one.
var errRetry = errors.New("app connection closed before answering")

// forward sends the request in cc.req to the live route of the listener
// and the response back; it reports whether the client connection can
// take another request.
func (s *server) forward(cc *clientConn, now time.Time) (keep bool) {
	req := &cc.req
	method := req.get(req.method)
	if string(method) == "CONNECT" {
		writeStatus(cc.bw, 405, "Method Not Allowed", "CONNECT is not supported\n")
		return false
	}
	rt := s.front.acquire()
	cc.route.Store(rt)
	defer func() {
		cc.route.Store(nil)
		rt.done()
	}()
	b := rt.b
	hasBody := req.chunked || req.contentLength > 0
	// A request that can be sent twice is retried if its pooled connection
	// turns out closed; any other only goes on a connection seen alive.
	retryable := idempotent(method) && !hasBody
	bufp := s.p.copyBufs.Get().(*[]byte)
	defer s.p.copyBufs.Put(bufp)
	buf := *bufp

	for attempt := 0; ; attempt++ {
		ac, reused, err := b.pool.get(now, !retryable)
		if err != nil {
			s.p.logLimited(&b.errLog, "%s (%s): %s %s: %v", b.color, b.pool.addr, method, req.get(req.target), err)
			writeStatus(cc.bw, 502, "Bad Gateway", fmt.Sprintf("oops proxy: %s (port %d) is not answering\n", b.color, b.port))
			return false
		}
		cc.app.Store(ac)
		keep, err = s.exchange(cc, ac, b, buf, now, reused && retryable && attempt < 2)
		cc.app.Store(nil)
		if errors.Is(err, errRetry) {
			ac.c.Close()
			continue
		}
		return keep
	}
}

// exchange is one request/response over app connection ac. With canRetry,
// a connection the app had closed while idle yields errRetry.
func (s *server) exchange(cc *clientConn, ac *appConn, b *backend, buf []byte, now time.Time, canRetry bool) (keep bool, err error) {
	req, res := &cc.req, &cc.res
	closeClient := req.connClose || req.minor == 0
	cc.out = appendRequestHead(cc.out[:0], req, cc.ip, b.pool.addr, cc.trusted)
	if _, err := ac.bw.Write(cc.out); err != nil {
		return s.appFailed(cc, ac, b, err, canRetry)
	}
	bodySent := !(req.chunked || req.contentLength > 0)
	sendBody := func() error {
		var err error
		if req.chunked {
			err = copyChunked(ac.bw, cc.br, false, buf)
		} else {
			err = copyBody(ac.bw, cc.br, req.contentLength, buf)
		}
		if err == nil {
			bodySent = true
		}
		return err
	}
	// final: res holds the app's final answer (it may come before the
	// whole body was sent).
	final := false
	if !bodySent && !req.expectContinue {
		if err := sendBody(); err != nil {
			if !earlyAnswer(ac, res) {
				ac.c.Close()
				return false, nil // the client's body broke off: nobody to answer
			}
			final = true
		}
	}
	if !final {
		if err := ac.bw.Flush(); err != nil {
			return s.appFailed(cc, ac, b, err, canRetry)
		}
	}
	color := string(b.color)
	for !final {
		if err := res.readResponse(ac.br); err != nil {
			return s.appFailed(cc, ac, b, err, canRetry)
		}
		canRetry = false
		if res.status >= 200 || res.status == 101 {
			break
		}
		// 100 Continue and other interim answers go to the client as they
		// come (HTTP/1.0 clients get none: they would not understand).
		if req.minor > 0 {
			cc.out = appendResponseHead(cc.out[:0], res, color, -1, false, false, false)
			if _, err := cc.bw.Write(cc.out); err != nil {
				ac.c.Close()
				return false, nil
			}
			if err := cc.bw.Flush(); err != nil {
				ac.c.Close()
				return false, nil
			}
		}
		if res.status == 100 && !bodySent {
			if err := sendBody(); err != nil {
				if !earlyAnswer(ac, res) {
					ac.c.Close()
					return false, nil
				}
				break
			}
			if err := ac.bw.Flush(); err != nil {
				return s.appFailed(cc, ac, b, err, false)
			}
		}
	}
	if res.status == 101 {
		if !req.wantsUpgrade() {
			return s.appFailed(cc, ac, b, errors.New("101 Switching Protocols to a request that did not ask to upgrade"), false)
		}
		cc.out = appendResponseHead(cc.out[:0], res, color, -1, false, false, true)
		if _, err := cc.bw.Write(cc.out); err != nil {
			ac.c.Close()
			return false, nil
		}
		if err := cc.bw.Flush(); err != nil {
			ac.c.Close()
			return false, nil
		}
		tunnel(cc, ac)
		return false, nil
	}
	if !bodySent {
		// The app answered without asking for the body the client may
		// still send: this connection cannot be trusted for another request.
		closeClient = true
	}

	// Frame the response for the client.
	noBody := string(req.get(req.method)) == "HEAD" || res.status == 204 || res.status == 304
	appReusable := !res.connClose && res.minor >= 1
	cl, chunked, dechunk := int64(-1), false, false
	switch {
	case noBody:
		cl = res.contentLength
	case res.chunked && req.minor == 0:
		dechunk, closeClient = true, true
	case res.chunked:
		chunked = true
	case res.contentLength >= 0:
		cl = res.contentLength
	default:
		// Ends when the app closes: so does the client's connection.
		closeClient, appReusable = true, false
	}
	cc.out = appendResponseHead(cc.out[:0], res, color, cl, chunked, closeClient, false)
	if _, err := cc.bw.Write(cc.out); err != nil {
		ac.c.Close()
		return false, nil
	}
	switch {
	case noBody:
	case res.chunked:
		err = copyChunked(cc.bw, ac.br, dechunk, buf)
	default:
		err = copyBody(cc.bw, ac.br, cl, buf)
	}
	if err == nil {
		err = cc.bw.Flush()
	}
	if err != nil {
		// Half a response went out: the client connection ends here.
		ac.c.Close()
		return false, nil
	}
	if appReusable {
		ac.lastUsed = now
		b.pool.put(ac)
	} else {
		ac.c.Close()
	}
	return !closeClient, nil
}

// earlyAnswer reads the answer an app may have sent before it read the
// whole request body (413 Content Too Large, 401) and then stopped
// reading, so the client gets it rather than a dropped connection.
func earlyAnswer(ac *appConn, res *head) bool {
	_ = ac.c.SetReadDeadline(time.Now().Add(time.Second))
	err := res.readResponse(ac.br)
	_ = ac.c.SetReadDeadline(time.Time{})
	return err == nil && res.status >= 200 && res.status != 101
}

// appFailed handles an app connection that broke before the response
// started: a retry when allowed and the connection was a stale idle one,
// else a 502 to the client.
func (s *server) appFailed(cc *clientConn, ac *appConn, b *backend, err error, canRetry bool) (bool, error) {
	ac.c.Close()
	if canRetry && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err)) {
		return false, errRetry
	}
	if cc.state.Load() == connClosed {
		return false, nil // cut by the drain timeout or shutdown
	}
	req := &cc.req
	s.p.logLimited(&b.errLog, "%s (%s): %s %s: %v", b.color, b.pool.addr, req.get(req.method), req.get(req.target), err)
	writeStatus(cc.bw, 502, "Bad Gateway", fmt.Sprintf("oops proxy: %s (port %d) did not answer: %v\n", b.color, b.port, shortErr(err)))
	return false, nil
}

func shortErr(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// tunnel copies bytes both ways between an upgraded client connection and
// its app connection until either side closes.
func tunnel(cc *clientConn, ac *appConn) {
	done := make(chan struct{}, 2)
	go func() {
		_, _ = cc.br.WriteTo(ac.c)
		done <- struct{}{}
	}()
	go func() {
		_, _ = ac.br.WriteTo(cc.c)
		done <- struct{}{}
	}()
	<-done
	cc.c.Close()
	ac.c.Close()
	<-done
}

// logLimited logs at most once a second per limiter, so a color that is
// down does not flood the log with one line per request.
func (p *Proxy) logLimited(last *atomic.Int64, format string, args ...any) {
	now := time.Now().UnixNano()
	prev := last.Load()
	if now-prev < int64(time.Second) || !last.CompareAndSwap(prev, now) {
		return
	}
	p.opts.Logf(format, args...)
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// trusts reports whether peer ip is in trusted-proxies.
func (p *Proxy) trusts(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, pr := range p.opts.TrustedProxies {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}
