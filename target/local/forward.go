package local

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
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
	maxIdleConns   = 1024
	appIdleMax     = 90 * time.Second
)

// appConn is a kept-alive connection to an app.
type appConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	// peek: the app's last answer had no body (HEAD, 204, 304), so a body
	// an app sends anyway may arrive after it; before reuse the pool
	// checks that nothing did, which would be read as the next answer.
	peek bool
	// sendTimeout, while a request is sent, moves sendBy, the write
	// deadline, before each write: an app that takes no byte of it for
	// that long is stuck (nginx's proxy_send_timeout).
	sendTimeout time.Duration
	sendBy      time.Time
}

// Write is what ac.bw writes through.
func (ac *appConn) Write(p []byte) (int, error) {
	if ac.sendTimeout > 0 && progress(&ac.sendBy, ac.sendTimeout) {
		_ = ac.c.SetWriteDeadline(ac.sendBy)
	}
	return ac.c.Write(p)
}

// sending starts (d > 0) or ends (0) the send timeout.
func (ac *appConn) sending(d time.Duration) {
	ac.sendTimeout, ac.sendBy = d, time.Time{}
	if d > 0 {
		ac.sendBy = time.Now().Add(d)
	}
	_ = ac.c.SetWriteDeadline(ac.sendBy)
}

// connPool holds idle connections to one color's app, newest last.
type connPool struct {
	addr string
	// maxIdle bounds idle, so that they fit the descriptor budget.
	maxIdle int
	mu      sync.Mutex
	idle    []*appConn
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
		if !(check || c.peek) || connAlive(c.c) {
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
	ac = &appConn{c: c, br: bufio.NewReaderSize(c, appReadBuf)}
	ac.bw = bufio.NewWriterSize(ac, appWriteBuf)
	return ac, false, nil
}

func (cp *connPool) put(ac *appConn) {
	cp.mu.Lock()
	if len(cp.idle) < cp.maxIdle {
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

// connBufs are what a client connection needs only while it carries a
// request. They come from a pool when a request starts and go back while
// the connection waits idle, so that an idle connection costs little more
// than its socket.
type connBufs struct {
	br  *bufio.Reader
	bw  *bufio.Writer
	req head
	res head
	out []byte
}

// clientConn is one client connection. It is the io.Reader and io.Writer
// under its buffers, to hold reads and writes to their timeouts.
type clientConn struct {
	*connBufs // nil while idle
	c         net.Conn
	ip        string
	state     atomic.Int32
	// status is the final status the client got for the request in
	// flight (0: no complete answer yet), start when its head was read,
	// counted whether the metrics have it: see colorMetrics.
	status  int
	start   time.Time
	counted bool
	// route and app are what the request in flight uses, for cutting it.
	route atomic.Pointer[route]
	app   atomic.Pointer[appConn]

	// Owned by the connection's goroutine. readBy and writeBy are the
	// deadlines in force; readTimeout and writeTimeout, when set, move
	// them before each read or write: the client must make progress.
	readBy, writeBy           time.Time
	readTimeout, writeTimeout time.Duration
	// idling: the connection waits for a request until idleBy; readBy
	// is idleBy, or sooner the end of the grace period before parking.
	idling bool
	idleBy time.Time
	// noPark: the parker refused this connection; it waits in its goroutine.
	noPark bool
	// rc waits for the next request without a buffer (nil: cannot).
	rc     syscall.RawConn
	ready  func(fd uintptr) bool
	polled bool
	peek   [1]byte
	// trusted: the peer is in trusted-proxies, its X-Forwarded-* are kept.
	trusted bool
}

func (cc *clientConn) setReadDeadline(t time.Time) {
	cc.readBy = t
	_ = cc.c.SetReadDeadline(t)
}

// progress moves deadline *by to now+d when less than 3/4 of d is left,
// so that a busy connection does not reset its timer on every read.
func progress(by *time.Time, d time.Duration) bool {
	now := time.Now()
	if by.Sub(now) >= d*3/4 {
		return false
	}
	*by = now.Add(d)
	return true
}

func (cc *clientConn) Read(p []byte) (int, error) {
	if cc.readTimeout > 0 && progress(&cc.readBy, cc.readTimeout) {
		_ = cc.c.SetReadDeadline(cc.readBy)
	}
	return cc.c.Read(p)
}

func (cc *clientConn) Write(p []byte) (int, error) {
	if cc.writeTimeout > 0 && progress(&cc.writeBy, cc.writeTimeout) {
		_ = cc.c.SetWriteDeadline(cc.writeBy)
	}
	return cc.c.Write(p)
}

// noDeadlines lifts every timeout, for an upgraded connection: a
// WebSocket may stay quiet for as long as its ends like.
func (cc *clientConn) noDeadlines() {
	cc.readTimeout, cc.writeTimeout, cc.idling = 0, 0, false
	cc.readBy, cc.writeBy = time.Time{}, time.Time{}
	_ = cc.c.SetDeadline(time.Time{})
}

// waitIdle waits, holding no buffer, until the client sends a byte (or
// closes, or the read deadline passes).
func (cc *clientConn) waitIdle() error {
	if cc.rc == nil {
		return nil // the caller's buffered read waits instead
	}
	cc.polled = false
	return cc.rc.Read(cc.ready)
}

// readyFn is the RawConn.Read callback of waitIdle: a first look without
// waiting; the second call comes once the socket is readable.
func (cc *clientConn) readyFn(fd uintptr) bool {
	if cc.polled {
		return true
	}
	cc.polled = true
	return peekReady(fd, cc.peek[:])
}

// takeBufs gives cc its buffers for a request.
func (p *Proxy) takeBufs(cc *clientConn) {
	if cc.connBufs != nil {
		return
	}
	cb := p.connBufs.Get().(*connBufs)
	cb.br.Reset(cc)
	cb.bw.Reset(cc)
	cc.connBufs = cb
}

// releaseBufs gives cc's buffers back, unless they hold bytes (the start
// of a pipelined request, or output not yet sent) and cc stays open.
func (p *Proxy) releaseBufs(cc *clientConn, closed bool) {
	cb := cc.connBufs
	if cb == nil || !closed && (cb.br.Buffered() > 0 || cb.bw.Buffered() > 0) {
		return
	}
	cc.connBufs = nil
	cb.br.Reset(nil)
	cb.bw.Reset(nil)
	p.connBufs.Put(cb)
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
	// parker holds idle connections past their grace period.
	parker *parker
}

func newServer(p *Proxy, f *front) *server {
	s := &server{p: p, front: f, conns: map[*clientConn]struct{}{}}
	s.parker = newParker(s)
	return s
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
		// Past the cap the connection is closed at once: the cheapest
		// answer under a flood, and what keeps descriptors for the admin
		// socket and the health checks.
		if s.p.open.Add(1) > int64(s.p.maxConns) {
			s.p.open.Add(-1)
			s.p.refused.Add(1)
			c.Close()
			s.p.logLimited(&s.p.capLog, "proxy: %d connections open (max-connections): closing new ones at once; %d closed so far",
				s.p.maxConns, s.p.refused.Load())
			continue
		}
		cc := &clientConn{c: c}
		if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
			cc.ip = host
			cc.trusted = s.p.trusts(host)
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			c.Close()
			s.p.open.Add(-1)
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
	// Parked connections have no goroutine to notice: they are closed
	// and counted out here.
	s.parker.stop()
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

// finish closes cc and counts it out of the server, once per connection:
// by its goroutine, or by the parker for a parked one.
func (s *server) finish(cc *clientConn) {
	cc.c.Close()
	s.p.releaseBufs(cc, true)
	s.mu.Lock()
	delete(s.conns, cc)
	s.mu.Unlock()
	s.p.open.Add(-1)
	s.wg.Done()
}

// serveConn serves cc until it closes, or until it is parked idle; the
// parker calls it again when the client sends its next request.
func (s *server) serveConn(cc *clientConn) {
	o := &s.p.opts
	parked := false
	defer func() {
		if r := recover(); r != nil {
			// A bug met by one request must not take the proxy down, and
			// every other client and the admin socket with it: only this
			// connection ends (as net/http does).
			n := s.p.panics.Add(1)
			s.p.logLimited(&s.p.panicLog, "proxy: panic serving %s (%d so far), connection closed: %v\n%s", cc.c.RemoteAddr(), n, r, debug.Stack())
			cc.abort()
			parked = false
		}
		if !parked {
			s.finish(cc)
		}
	}()
	if cc.rc == nil {
		if sc, ok := cc.c.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				cc.rc, cc.ready = rc, cc.readyFn
			}
		}
	}
	cc.writeTimeout = o.WriteTimeout
	for {
		if s.closing.Load() {
			return
		}
		if cc.connBufs == nil || cc.br.Buffered() == 0 {
			// Idle: nothing of another request has arrived. Wait without
			// buffers, up to the idle timeout, then close without a word.
			// The deadline is only moved when it comes near, which saves
			// a timer update per request on a busy connection.
			s.p.releaseBufs(cc, false)
			cc.readTimeout = 0
			now := time.Now()
			renew := !cc.idling || cc.idleBy.Sub(now) < o.IdleTimeout/2
			if renew {
				cc.idleBy = now.Add(o.IdleTimeout)
			}
			// Idle past the grace period, a connection without buffers
			// is parked: it costs no goroutine until its next request.
			// A busy one never gets there: its deadline only moves when
			// less than half the grace period is left, and it times out
			// after half of it, at least, with nothing received.
			by, grace := cc.idleBy, s.parker.grace
			canPark := grace > 0 && cc.rc != nil && cc.connBufs == nil && !cc.noPark
			if canPark {
				if g := now.Add(grace); g.Before(by) {
					by = g
				}
				renew = renew || cc.readBy.Sub(now) < grace/2
			} else {
				renew = renew || !cc.readBy.Equal(by)
			}
			if renew {
				cc.setReadDeadline(by)
				cc.idling = true
			}
			if err := cc.waitIdle(); err != nil {
				if canPark && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(cc.idleBy) {
					if parked = s.parker.park(cc); parked {
						return
					}
					cc.noPark = true
					continue
				}
				return
			}
			s.p.takeBufs(cc)
			if _, err := cc.br.Peek(1); err != nil {
				// The grace deadline may pass between the wait and this
				// read, which then fails without reading: wait again.
				if errors.Is(err, os.ErrDeadlineExceeded) && cc.connBufs.br.Buffered() == 0 && time.Now().Before(cc.idleBy) {
					continue
				}
				return
			}
		}
		// Empty lines between requests (RFC 9112, 2.2; old clients send
		// one after a body) begin no head: the connection is still idle.
		if skipEmptyLines(cc.br) && cc.br.Buffered() == 0 {
			continue
		}
		now := time.Now()
		if !cc.state.CompareAndSwap(connIdle, connBusy) {
			return
		}
		// A head begun must be complete within the header timeout
		// (slowloris); one that came in whole needs no timer. The last
		// body's timeout no longer applies: it would move the deadline on
		// each byte of a pipelined head that trickles.
		cc.readTimeout = 0
		if !headBuffered(cc.br) {
			cc.setReadDeadline(now.Add(o.HeaderTimeout))
			cc.idling = false
		}
		if err := cc.req.readRequest(cc.br); err != nil {
			s.badRequest(cc, err)
			return
		}
		if cc.req.hasBody() {
			// A body may take long, but must keep coming.
			cc.readTimeout = o.BodyTimeout
			cc.setReadDeadline(time.Now().Add(o.BodyTimeout))
			cc.idling = false
		}
		keep := s.forward(cc, now)
		if !keep || !cc.state.CompareAndSwap(connBusy, connIdle) {
			return
		}
	}
}

// skipEmptyLines discards the empty lines (CRLF or LF) at the start of
// what br holds, and reports whether there were any.
func skipEmptyLines(br *bufio.Reader) bool {
	skipped := false
	for {
		b, _ := br.Peek(min(br.Buffered(), 2))
		n := 0
		switch {
		case len(b) >= 1 && b[0] == '\n':
			n = 1
		case len(b) == 2 && b[0] == '\r' && b[1] == '\n':
			n = 2
		default:
			return skipped
		}
		_, _ = br.Discard(n)
		skipped = true
	}
}

// headBuffered reports whether a whole request head is in br already.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// badRequest answers a request that could not be read, if there is anyone
// to answer.
func (s *server) badRequest(cc *clientConn, err error) {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout() && cc.state.Load() != connClosed:
		// A byte of it came, the rest not in time.
		writeStatus(cc, 408, "Request Timeout", "request head not received in time\n")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.As(err, &ne):
		return
	case errors.Is(err, errURITooLong):
		writeStatus(cc, 414, "URI Too Long", "request line too long\n")
	case errors.Is(err, errHeadTooLarge):
		writeStatus(cc, 431, "Request Header Fields Too Large", "request head too large\n")
	case errors.Is(err, errUnsupportedTE):
		writeStatus(cc, 501, "Not Implemented", "unsupported Transfer-Encoding\n")
	case errors.Is(err, errMethod):
		writeStatus(cc, 501, "Not Implemented", "unsupported method (methods are upper case)\n")
	case errors.Is(err, errVersion):
		writeStatus(cc, 505, "HTTP Version Not Supported", "only HTTP/1.0 and HTTP/1.1 are supported\n")
	default:
		writeStatus(cc, 400, "Bad Request", "malformed request\n")
	}
}

// writeStatus answers the request on cc with one of the proxy's own, and
// closes. It is the only way the proxy answers by itself, so every such
// answer carries a Date (RFC 9110, 6.6.1), says nothing of colors or ports
// (the log does), and is counted: it records the status the client got,
// which forward counts when the exchange ends.
func writeStatus(cc *clientConn, code int, status, body string) {
	fmt.Fprintf(cc.bw, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, status, time.Now().UTC().Format(http.TimeFormat), len(body), body)
	if cc.bw.Flush() == nil {
		cc.status = code
	}
}

// badBody answers a request whose body broke the framing rules (a
// malformed chunk or trailer) with a 400, after closing the app connection
// that got part of it.
func (s *server) badBody(cc *clientConn, ac *appConn, err error) (keep bool, _ error) {
	ac.c.Close()
	s.badRequest(cc, err)
	return false, nil
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
		writeStatus(cc, 405, "Method Not Allowed", "CONNECT is not supported\n")
		return false
	}
	if h := s.p.opts.beforeForward; h != nil {
		h(method, req.get(req.target))
	}
	rt := s.front.acquire()
	cc.route.Store(rt)
	cc.status, cc.start, cc.counted = 0, time.Now(), false
	defer cc.release()
	if h := s.p.opts.beforeCount; h != nil {
		defer h(req.get(req.target)) // runs before release
	}
	b := rt.b
	hasBody := req.hasBody()
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
			writeStatus(cc, 502, "Bad Gateway", "oops proxy: the app is not answering\n")
			if hasBody {
				// The body was not read: closing now would reset the
				// connection under the 502 (and the client's upload).
				cc.release()
				lingerClose(cc.c, buf)
			}
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
	timeout := s.p.opts.UpstreamTimeout
	ac.sending(timeout)
	if _, err := ac.bw.Write(cc.out); err != nil {
		return s.appFailed(cc, ac, b, err, canRetry)
	}
	hasBody := req.hasBody()
	// bodyRead: all of the client's body was read; bodySent: and the app
	// got it, so its connection can take another request.
	bodyRead, bodySent := !hasBody, !hasBody
	defer func() {
		if !bodyRead && !keep && err == nil {
			// The client may still be sending the body: closing now would
			// reset the connection and could destroy the answer. The
			// request is over: counted now, its color free to drain.
			cc.release()
			lingerClose(cc.c, buf)
		}
	}()
	// An HTTP/1.0 client cannot be sent a 100: its expectation is ignored
	// (RFC 9110, 10.1.1) and the body goes at once.
	var pump *bodyPump
	// final: res holds the app's final answer (it may come before the
	// whole body was sent).
	final := false
	switch {
	case hasBody && req.expectContinue && req.minor >= 1:
		if err := ac.bw.Flush(); err != nil {
			return s.appFailed(cc, ac, b, err, false)
		}
		pump = startPump(cc, ac, buf, timeout)
	case hasBody:
		var err error
		if req.chunked {
			err = copyChunked(ac.bw, cc.br, req, false, buf)
		} else {
			err = copyBody(ac.bw, cc.br, req.contentLength, buf)
		}
		if err != nil {
			if errors.Is(err, errBadMessage) {
				return s.badBody(cc, ac, err)
			}
			if !earlyAnswer(ac, res) {
				if isWriteErr(err) {
					// The app closed (or crashed) without an answer
					// while it took the body: the client still gets one.
					return s.appFailed(cc, ac, b, err, false)
				}
				ac.c.Close()
				bodyStalled(cc, err)
				return false, nil // the client's body broke off: nobody to answer
			}
			final = true
			break
		}
		bodyRead, bodySent = true, true
		fallthrough
	default:
		if err := ac.bw.Flush(); err != nil {
			return s.appFailed(cc, ac, b, err, canRetry)
		}
		ac.sending(0)
		// The app has the whole request: its answer must start in time.
		_ = ac.c.SetReadDeadline(time.Now().Add(timeout))
	}
	color := string(b.color)
	for !final {
		if err := res.readResponse(ac.br); err != nil {
			if pump != nil {
				pump.finish()
				switch {
				case pump.broke == nil:
				case isWriteErr(pump.broke):
					err = pump.broke // the app stopped taking the body
				case errors.Is(pump.broke, errBadMessage):
					return s.badBody(cc, ac, pump.broke)
				default:
					ac.c.Close()
					bodyStalled(cc, pump.broke)
					return false, nil // the client's body broke off: nobody to answer
				}
			}
			return s.appFailed(cc, ac, b, err, canRetry)
		}
		canRetry = false
		if res.status >= 200 || res.status == 101 {
			break
		}
		// 100 Continue and other interim answers go to the client as they
		// come (HTTP/1.0 clients get none: they would not understand).
		if req.minor > 0 && !pump.relayInterim(cc, res, color) {
			if pump != nil {
				pump.finish()
			}
			ac.c.Close()
			return false, nil
		}
		if pump == nil {
			_ = ac.c.SetReadDeadline(time.Now().Add(timeout))
		} else {
			pump.rearm()
		}
	}
	if pump != nil {
		// The pump is done before anything else uses these connections.
		bodyRead, bodySent, _ = pump.finish()
	}
	_ = ac.c.SetReadDeadline(time.Time{})
	if res.status == 101 {
		if !req.wantsUpgrade() {
			return s.appFailed(cc, ac, b, errors.New("101 Switching Protocols to a request that did not ask to upgrade"), false)
		}
		if !bodySent {
			return s.appFailed(cc, ac, b, errors.New("101 Switching Protocols before the request body was sent"), false)
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
		cc.status = res.status
		cc.count(b) // now: the tunnel's life is no request's duration
		tunnel(cc, ac)
		return false, nil
	}
	if !bodyRead {
		// The app answered without the body the client may still send:
		// this connection cannot be trusted for another request.
		closeClient = true
	}

	// Frame the response for the client.
	noBody := string(req.get(req.method)) == "HEAD" || res.status == 204 || res.status == 304
	// An app that answered without all of the body still waits for the
	// rest of it: its connection is spoiled.
	appReusable := !res.connClose && res.minor >= 1 && bodySent
	cl, chunked, dechunk := int64(-1), false, false
	switch {
	case noBody:
		if res.status != 204 { // a 204 has no Content-Length (RFC 9110, 8.6)
			cl = res.contentLength
		}
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
		err = copyChunked(cc.bw, ac.br, res, dechunk, buf)
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
	cc.status = res.status
	// Bytes past the end of the response would be the next client's
	// answer: the app sent more than its framing said, or a body where
	// none can be (RFC 9112, 6.3).
	if appReusable && ac.br.Buffered() == 0 {
		ac.lastUsed, ac.peek = now, noBody
		b.pool.put(ac)
	} else {
		ac.c.Close()
	}
	return !closeClient, nil
}

// bodyStalled answers a request whose body stopped coming for the body
// timeout (the client is still there, just slow: maybe it reads a 408).
func bodyStalled(cc *clientConn, err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && cc.state.Load() != connClosed {
		writeStatus(cc, 408, "Request Timeout", "request body stalled\n")
	}
}

// release ends the request in flight on cc, once: counted for its color,
// and its route let go, so a drain does not wait for a lingering close.
func (cc *clientConn) release() {
	if rt := cc.route.Swap(nil); rt != nil {
		cc.count(rt.b)
		rt.done()
	}
}

// count records the request in flight on cc for color b, once: the status
// the client got and how long it took.
func (cc *clientConn) count(b *backend) {
	if cc.counted {
		return
	}
	cc.counted = true
	b.metrics.observe(cc.status, cc.start, time.Now())
}

// Uploads with Expect: 100-continue, and client connections closed with
// their request body unread.
const (
	// expectWait: when neither the client has started its body nor the app
	// answered in this time, the proxy sends the client a 100 Continue
	// itself (HTTP/1.0 apps never do; curl waits as long on its own).
	expectWait = time.Second
	// lingerTime bounds how long the rest of an unread request body is read
	// and dropped after the answer, and lingerIdle how long the client may
	// pause meanwhile (nginx's lingering_time and lingering_timeout).
	lingerTime = 5 * time.Second
	lingerIdle = time.Second
)

// bodyPump sends the body of an Expect: 100-continue request to the app as
// soon as the client sends it, while exchange reads what the app answers:
// a 100 (the client then sends), a final answer without the body (the
// body is not wanted), or nothing (the app never sends 100: the client
// sends after its own wait, or after the proxy's 100).
type bodyPump struct {
	cc      *clientConn
	ac      *appConn
	timeout time.Duration
	done    chan error
	// read is set once the whole body was read from the client, before
	// its last byte goes to the app: an app that answered before read was
	// set did not have all of it.
	read atomic.Bool

	mu sync.Mutex // guards the fields below and the deadlines the pump sets
	// stopped: exchange stopped the pump; continued: the client was sent
	// a 100; sent: the whole body went to the app; broke: the pump's own
	// failure (the client's or the app's connection broke).
	stopped, continued, sent bool
	broke                    error
}

func startPump(cc *clientConn, ac *appConn, buf []byte, timeout time.Duration) *bodyPump {
	p := &bodyPump{cc: cc, ac: ac, timeout: timeout, done: make(chan error, 1)}
	go p.run(buf)
	return p
}

func (p *bodyPump) run(buf []byte) {
	err := p.pump(buf)
	if err == nil {
		err = p.ac.bw.Flush()
	}
	p.mu.Lock()
	switch {
	case p.stopped:
	case err == nil:
		// The app has the whole request: its answer must start in time.
		p.sent = true
		_ = p.ac.c.SetReadDeadline(time.Now().Add(p.timeout))
	default:
		// Give an answer the app may have sent a moment to arrive, as
		// earlyAnswer does.
		p.broke = err
		_ = p.ac.c.SetReadDeadline(time.Now().Add(time.Second))
	}
	p.mu.Unlock()
	p.done <- err
}

// pump passes the body on; a panic in it ends this request, not the proxy.
func (p *bodyPump) pump(buf []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic passing the body on: %v", r)
		}
	}()
	if err = p.waitForBody(); err == nil {
		err = p.copy(buf)
	}
	return err
}

// waitForBody waits for the client's first body byte; after expectWait
// with no 100 passed on from the app, it sends the client one itself.
func (p *bodyPump) waitForBody() error {
	if !p.setClientDeadline(time.Now().Add(expectWait)) {
		return errPumpStopped
	}
	_, err := p.cc.br.Peek(1)
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errPumpStopped
	}
	if err != nil && !p.continued {
		p.continued = true
		if _, err := p.cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return err
		}
		if err := p.cc.bw.Flush(); err != nil {
			return err
		}
	}
	// Back to the body timeout the connection had (none: none).
	return p.cc.c.SetReadDeadline(p.cc.readBy)
}

var errPumpStopped = errors.New("request body no longer wanted")

func (p *bodyPump) setClientDeadline(t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	_ = p.cc.c.SetReadDeadline(t)
	return true
}

func (p *bodyPump) copy(buf []byte) error {
	req := &p.cc.req
	if req.chunked {
		// The chunked body's last bytes stay in ac.bw until the flush.
		if err := copyChunked(p.ac.bw, p.cc.br, req, false, buf); err != nil {
			return err
		}
		p.read.Store(true)
		return nil
	}
	// The last byte is copied on its own, after read is set: it stays in
	// ac.bw until the flush, so the app cannot have answered with the
	// whole body before read says so.
	if err := copyBody(p.ac.bw, p.cc.br, req.contentLength-1, buf); err != nil {
		return err
	}
	c, err := p.cc.br.ReadByte()
	if err != nil {
		return err
	}
	p.read.Store(true)
	return p.ac.bw.WriteByte(c)
}

// relayInterim passes an interim answer to the client (p may be nil: no
// pump runs); false when the client connection broke.
func (p *bodyPump) relayInterim(cc *clientConn, res *head, color string) bool {
	if p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if res.status == 100 {
			if p.continued {
				return true // the proxy's own 100 went first
			}
			p.continued = true
		}
	}
	cc.out = appendResponseHead(cc.out[:0], res, color, -1, false, false, false)
	if _, err := cc.bw.Write(cc.out); err != nil {
		return false
	}
	return cc.bw.Flush() == nil
}

// rearm restarts the clock on the app's answer after an interim answer,
// once the app has the whole body.
func (p *bodyPump) rearm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent && !p.stopped {
		_ = p.ac.c.SetReadDeadline(time.Now().Add(p.timeout))
	}
}

// finish ends the pump once the app's final answer (or failure) is there:
// a body not yet read from the client is no longer wanted. It reports
// whether the client's body was all read, and all sent to the app.
func (p *bodyPump) finish() (read, sent bool, err error) {
	if p.read.Load() {
		// Only the flush of the last bytes may be left: a moment for it.
		_ = p.ac.c.SetWriteDeadline(time.Now().Add(time.Second))
	} else {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		// clientConn.Read and appConn.Write move their deadlines as they
		// make progress, and one may have just undone the stop: it is
		// set again until the pump is out.
		past := time.Unix(1, 0)
		again := time.NewTicker(100 * time.Millisecond)
		defer again.Stop()
	wait:
		for {
			_ = p.cc.c.SetReadDeadline(past)
			_ = p.ac.c.SetWriteDeadline(past)
			select {
			case err = <-p.done:
				p.done <- err
				break wait
			case <-again.C:
			}
		}
	}
	err = <-p.done
	p.done <- err // finish may be called again
	p.ac.sending(0)
	return p.read.Load(), err == nil, err
}

// lingerClose half-closes a client connection whose request body was not
// all read, then reads and drops what the client still sends until it
// closes, for lingerTime at most. Closing with unread data would make the
// kernel send a reset, which can destroy the answer before the client
// reads it, or fail the upload the client is still writing.
func lingerClose(c net.Conn, buf []byte) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	end := time.Now().Add(lingerTime)
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		d := now.Add(lingerIdle)
		if d.After(end) {
			d = end
		}
		_ = c.SetReadDeadline(d)
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func isWriteErr(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "write"
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
// else a 502 to the client (504 when the app did not answer in time).
func (s *server) appFailed(cc *clientConn, ac *appConn, b *backend, err error, canRetry bool) (bool, error) {
	ac.c.Close()
	if canRetry && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err)) {
		return false, errRetry
	}
	if cc.state.Load() == connClosed {
		return false, nil // cut by the drain timeout or shutdown
	}
	req := &cc.req
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// No answer within upstream-timeout (the only read deadline on an
		// app connection while an answer is awaited), or no byte of the
		// request taken for as long (the only write deadline).
		what := "no answer"
		if isWriteErr(err) {
			what = "the request body not taken"
		}
		s.p.logLimited(&b.errLog, "%s (%s): %s %s: %s within upstream-timeout %s", b.color, b.pool.addr, req.get(req.method), req.get(req.target), what, s.p.opts.UpstreamTimeout)
		writeStatus(cc, 504, "Gateway Timeout", "oops proxy: the app did not answer in time\n")
		return false, nil
	}
	s.p.logLimited(&b.errLog, "%s (%s): %s %s: %v", b.color, b.pool.addr, req.get(req.method), req.get(req.target), err)
	writeStatus(cc, 502, "Bad Gateway", "oops proxy: the app did not answer\n")
	return false, nil
}

// tunnel copies bytes both ways between an upgraded client connection and
// its app connection until either side closes.
func tunnel(cc *clientConn, ac *appConn) {
	cc.noDeadlines()
	done := make(chan struct{}, 2)
	go func() {
		// What the client sent after its request head, then the socket
		// itself (spliced where the OS can).
		if n := cc.br.Buffered(); n > 0 {
			b, _ := cc.br.Peek(n)
			if _, err := ac.c.Write(b); err != nil {
				done <- struct{}{}
				return
			}
			_, _ = cc.br.Discard(n)
		}
		_, _ = io.Copy(ac.c, cc.c)
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
