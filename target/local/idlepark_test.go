package local

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Idle connections past the grace period are parked (Linux): they must
// behave as before, served at their next request, closed at the idle
// timeout, at shutdown, or when the client goes.

const testGrace = 20 * time.Millisecond

// waitParked waits until the public listener has k parked connections
// (where there is a parker; elsewhere it waits out the grace period).
func waitParked(t *testing.T, rp *runningProxy, k int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		time.Sleep(10 * testGrace)
		return
	}
	pk := rp.p.live.srv.Load().parker
	deadline := time.Now().Add(10 * time.Second)
	for pk.parkedCount() < k {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", pk.parkedCount(), k)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitOpen waits until the proxy counts n open client connections.
func waitOpen(t *testing.T, p *Proxy, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.open.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections counted open, want %d", p.open.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// roundTrip sends a GET on c and returns the body of the answer.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader) (string, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func dialKeepAlive(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// expectClosed checks that the proxy closes c without a word.
func expectClosed(t *testing.T, c net.Conn, br *bufio.Reader, why string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: connection still open after 10s", why)
	}
	if len(b) > 0 {
		t.Errorf("%s: proxy sent %q before closing, want nothing", why, b)
	}
}

func TestProxyParkedConnectionIsServedAgain(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t), idleGrace: testGrace})
	c, br := dialKeepAlive(t, rp.url)
	for i := range 3 {
		if body, err := roundTrip(t, c, br); err != nil || body != "blue" {
			t.Fatalf("request %d, parked in between: %q, %v", i+1, body, err)
		}
		waitParked(t, rp, 1)
	}
	// A request that comes in pieces, the first one to a parked connection.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\n")
	time.Sleep(10 * time.Millisecond)
	io.WriteString(c, "Host: x\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("request in two pieces to a parked connection: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "blue" {
		t.Errorf("request in two pieces to a parked connection: %q", b)
	}
}

func TestProxyParkedConnectionClosesAtIdleTimeout(t *testing.T) {
	t.Parallel()
	o := withShort(ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t), idleGrace: testGrace})
	rp := startProxy(t, o)
	c, br := dialKeepAlive(t, rp.url)
	start := time.Now()
	if body, err := roundTrip(t, c, br); err != nil || body != "blue" {
		t.Fatalf("first request: %q, %v", body, err)
	}
	expectClosed(t, c, br, "idle past the idle timeout")
	if d := time.Since(start); d < o.IdleTimeout/2 {
		t.Errorf("closed after %s, before half the idle timeout (%s)", d, o.IdleTimeout)
	}
	waitOpen(t, rp.p, 0)
}

func TestProxyShutdownClosesParkedConnectionsAtOnce(t *testing.T) {
	t.Parallel()
	// A drain timeout longer than stop waits: parked connections must
	// not be waited for.
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t),
		idleGrace: testGrace, DrainTimeout: time.Minute})
	const n = 5
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	var cs []conn
	for range n {
		c, br := dialKeepAlive(t, rp.url)
		if body, err := roundTrip(t, c, br); err != nil || body != "blue" {
			t.Fatalf("request: %q, %v", body, err)
		}
		cs = append(cs, conn{c, br})
	}
	waitParked(t, rp, n)
	rp.stop(t)
	for _, c := range cs {
		expectClosed(t, c.c, c.br, "parked at shutdown")
	}
	if got := rp.p.open.Load(); got != 0 {
		t.Errorf("%d connections counted open after shutdown, want 0", got)
	}
}

func TestProxyParkedConnectionClosedByClientFreesItsSlot(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t),
		idleGrace: testGrace, MaxConnections: 2})
	c1, br1 := dialKeepAlive(t, rp.url)
	c2, br2 := dialKeepAlive(t, rp.url)
	for _, c := range []struct {
		c  net.Conn
		br *bufio.Reader
	}{{c1, br1}, {c2, br2}} {
		if body, err := roundTrip(t, c.c, c.br); err != nil || body != "blue" {
			t.Fatalf("request: %q, %v", body, err)
		}
	}
	waitParked(t, rp, 2)
	c1.Close()
	waitOpen(t, rp.p, 1)
	c3, br3 := dialKeepAlive(t, rp.url)
	if body, err := roundTrip(t, c3, br3); err != nil || body != "blue" {
		t.Fatalf("a connection in the slot a parked one left: %q, %v", body, err)
	}
}

// Clients that send their next request around the grace period and the
// idle timeout, and a shutdown in the middle: every connection is
// counted out exactly once (a second time would panic the WaitGroup or
// leave the open count below zero), and -race sees no data race.
func TestProxyParkingRacesWakeUpsTimeoutsAndShutdown(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t),
		idleGrace: 10 * time.Millisecond, IdleTimeout: 40 * time.Millisecond, DrainTimeout: time.Minute})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 40 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
				if err != nil {
					return // the listener is closed
				}
				br := bufio.NewReader(c)
				for {
					if _, err := roundTrip(t, c, br); err != nil {
						break // closed at the idle timeout, or shut down
					}
					time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
				}
				c.Close()
			}
		})
	}
	time.Sleep(time.Second)
	rp.stop(t)
	close(stop)
	wg.Wait()
	if got := rp.p.open.Load(); got != 0 {
		t.Errorf("%d connections counted open after shutdown, want 0", got)
	}
}
