package local

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
)

// short are timeouts a test can wait out.
var short = ProxyOptions{HeaderTimeout: 200 * time.Millisecond, BodyTimeout: 200 * time.Millisecond,
	WriteTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}

func withShort(o ProxyOptions) ProxyOptions {
	o.HeaderTimeout, o.BodyTimeout, o.WriteTimeout, o.IdleTimeout = short.HeaderTimeout, short.BodyTimeout, short.WriteTimeout, short.IdleTimeout
	return o
}

// slowly sends req on a new connection, a piece at a time (stopping
// before the end), and returns what the proxy answers before it closes.
func slowly(t *testing.T, addr string, pieces ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, p := range pieces {
		if _, err := io.WriteString(c, p); err != nil {
			break // cut already
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

func TestProxyTimeoutsCutStalledClients(t *testing.T) {
	t.Parallel()
	got := make(chan string, 10)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s %d %v", r.URL.Path, len(b), err != nil)
		fmt.Fprint(w, "ok")
	})
	rp := startProxy(t, withShort(ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", app), GreenPort: freePort(t)}))
	addr := strings.TrimPrefix(rp.url, "http://")
	tests := []struct {
		name   string
		pieces []string
		want   string // prefix of the answer
	}{
		// Slowloris: a head begun and never finished.
		{"head stalls", []string{"GET / HTTP/1.1\r\n", "Host: x\r\n", "X-a: 1\r\n"}, "HTTP/1.1 408 Request Timeout"},
		{"head trickles past the header timeout", []string{"GET / HTTP/1.1\r\n", "X-a: 1\r\n", "X-b: 1\r\n", "X-c: 1\r\n", "X-d: 1\r\n", "X-e: 1\r\n", "X-f: 1\r\n", "X-g: 1\r\n"}, "HTTP/1.1 408 Request Timeout"},
		// A body that stops coming.
		{"body stalls", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", "0123456789"}, "HTTP/1.1 408 Request Timeout"},
		{"chunked body stalls", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "a\r\n0123456789\r\n"}, "HTTP/1.1 408 Request Timeout"},
		// Waiting for a next request is not a timeout to answer.
		{"idle connection", nil, ""},
		{"idle after a request", []string{"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"}, "HTTP/1.1 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := slowly(t, addr, tt.pieces...)
			if !strings.HasPrefix(out, tt.want) || tt.want == "" && out != "" {
				t.Fatalf("answer %q, want %q", out, tt.want)
			}
			if strings.Count(out, "HTTP/1.1") > 1 {
				t.Fatalf("more than one answer: %q", out)
			}
		})
	}
	// The app saw the stalled uploads end (its connection was closed too).
	for range 2 {
		select {
		case s := <-got:
			if !strings.HasPrefix(s, "/upload") || !strings.HasSuffix(s, "true") {
				t.Errorf("app saw %q, want a broken /upload", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the app's side of a stalled upload stayed open")
		}
	}
}

func TestProxyWriteTimeoutCutsAClientThatStopsReading(t *testing.T) {
	t.Parallel()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 1024 { // 64 MiB: more than any socket buffer holds
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	dir := t.TempDir()
	rp := startProxy(t, withShort(ProxyOptions{StateDir: dir, BluePort: colorServer(t, "blue", app), GreenPort: freePort(t)}))
	c, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(10 * time.Second)
	for rp.p.InFlight(release.Blue) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Never read: the request must still end, freeing both connections.
	for rp.p.InFlight(release.Blue) > 0 || rp.p.open.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a client that stopped reading still holds the request (%d in flight, %d open)", rp.p.InFlight(release.Blue), rp.p.open.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Timeouts are on progress: a stream and a WebSocket that are quiet for
// longer than every timeout keep working.
func TestProxyTimeoutsSpareStreamsAndUpgrades(t *testing.T) {
	t.Parallel()
	pause := 4 * short.IdleTimeout
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			upgradeEcho("blue").ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			_ = rc.Flush()
			time.Sleep(pause)
		}
	})
	rp := startProxy(t, withShort(ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", stream), GreenPort: freePort(t)}))

	t.Run("event stream", func(t *testing.T) {
		t.Parallel()
		res, err := http.Get(rp.url + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil || string(b) != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
			t.Fatalf("stream: %q, %v", b, err)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		t.Parallel()
		conn, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v, %v", res, err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		for i := range 3 {
			time.Sleep(pause)
			fmt.Fprintf(conn, "msg %d\n", i)
			line, err := br.ReadString('\n')
			if err != nil || line != fmt.Sprintf("blue msg %d\n", i) {
				t.Fatalf("after a quiet %s: %q, %v", pause, line, err)
			}
		}
	})
}

func TestProxyMaxConnectionsClosesNewOnesAtOnce(t *testing.T) {
	t.Parallel()
	opts := ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t), MaxConnections: 3}
	rp := startProxy(t, opts)
	addr := strings.TrimPrefix(rp.url, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rp.p.open.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the proxy did not take 3 connections")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Past the cap: closed at once, with or without a request.
	for range 5 {
		if out := raw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); out != "" {
			t.Fatalf("past max-connections: %q, want the connection closed", out)
		}
	}
	if st := rp.p.Status().Limits; st.Connections != 3 || st.MaxConnections != 3 || st.Refused != 5 {
		t.Errorf("status limits: %+v", st)
	}
	// One of them goes: there is room again.
	held[0].Close()
	held = held[1:]
	for {
		res, err := (&http.Client{Timeout: 5 * time.Second}).Get(rp.url)
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnLimitsFitTheDescriptorLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fds               uint64
		want              int
		maxConns, maxIdle int
	}{
		{0, 0, DefaultMaxConnections, maxIdleConns},        // unknown limit
		{1 << 40, 0, DefaultMaxConnections, maxIdleConns},  // unlimited
		{1 << 20, 0, DefaultMaxConnections, maxIdleConns},  // plenty
		{1 << 20, 200000, 200000, maxIdleConns},            // asked for more, and it fits
		{20000, 0, (20000 - fdReserve - 2*1024) / 2, 1024}, // the host
		{20000, 5000, 5000, 1024},
		{256, 0, (256 - fdReserve - 2*24) / 2, 24},
		{256, 1000, (256 - fdReserve - 2*24) / 2, 24}, // lowered to fit
		{10, 0, 1, 1},
	}
	for _, tt := range tests {
		c, i := connLimits(tt.fds, tt.want)
		if c != tt.maxConns || i != tt.maxIdle {
			t.Errorf("connLimits(%d, %d) = %d, %d; want %d, %d", tt.fds, tt.want, c, i, tt.maxConns, tt.maxIdle)
		}
		// Every client with its app connection, both idle pools and the
		// reserve fit in the limit.
		if tt.fds > 100 && tt.fds < 1<<30 && uint64(2*c+2*i+fdReserve) > tt.fds {
			t.Errorf("connLimits(%d, %d) = %d, %d: needs more descriptors than there are", tt.fds, tt.want, c, i)
		}
	}
}

// Buffers go back to the pool between requests only when they hold
// nothing: bytes that came early are never lost.
func TestProxyKeepsBytesThatCameEarly(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", upgradeEcho("blue")), GreenPort: freePort(t)})
	addr := strings.TrimPrefix(rp.url, "http://")
	t.Run("half a pipelined head", func(t *testing.T) {
		out := slowly(t, addr, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n", "Host: x\r\nConnection: close\r\n\r\n")
		if n := strings.Count(out, "HTTP/1.1 200 OK"); n != 2 {
			t.Fatalf("%d answers, want 2: %q", n, out)
		}
	})
	t.Run("a message right behind an upgrade", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly\n")
		br := bufio.NewReader(c)
		if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v, %v", res, err)
		}
		if line, err := br.ReadString('\n'); err != nil || line != "blue early\n" {
			t.Fatalf("echo of the early message: %q, %v", line, err)
		}
	})
}

// A head that stalls right behind a request with a body gets the header
// timeout, not the body timeout: else a slowloris client sends a tiny POST
// first and then trickles its next head for as long as it likes.
func TestProxyHeaderTimeoutAfterABody(t *testing.T) {
	t.Parallel()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	})
	opts := withShort(ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", app), GreenPort: freePort(t)})
	opts.BodyTimeout = time.Minute
	rp := startProxy(t, opts)
	c, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Well past the header timeout, well short of the body timeout.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nxGET /b HTTP/1.1\r\nHo")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("first answer: %v, %v", res, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res, err = http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("after the stalled second head: %v, %v; want a 408 at the header timeout", res, err)
	}
}

// An empty line after a request (old clients send one after a POST body;
// RFC 9112, 2.2) begins no head: the connection is idle, and still usable
// past the header timeout, not answered 408.
func TestProxyEmptyLineAfterARequestIsIdle(t *testing.T) {
	t.Parallel()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, r.URL.Path)
	})
	opts := withShort(ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", app), GreenPort: freePort(t)})
	opts.IdleTimeout = time.Minute
	rp := startProxy(t, opts)
	for _, tt := range []struct{ name, first string }{
		{"after a body", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\r\n"},
		{"after a head", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\n"},
		{"bare LF", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			fmt.Fprint(c, tt.first)
			res, err := http.ReadResponse(br, nil)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("first answer: %v, %v", res, err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			time.Sleep(4 * opts.HeaderTimeout) // idle, past the header timeout
			fmt.Fprint(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err = http.ReadResponse(br, nil)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("next request on the idle connection: %v, %v; want 200", res, err)
			}
			if b, _ := io.ReadAll(io.LimitReader(res.Body, 2)); string(b) != "/b" {
				t.Fatalf("next answer %q, want /b", b)
			}
		})
	}
}

// Empty lines before a stalled head do not make it look whole: it still
// gets the header timeout, not the idle timeout.
func TestProxyHeaderTimeoutAfterEmptyLines(t *testing.T) {
	t.Parallel()
	opts := withShort(ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t)})
	opts.IdleTimeout = time.Minute
	rp := startProxy(t, opts)
	out := slowly(t, strings.TrimPrefix(rp.url, "http://"), "\r\n\r\nGET / HTTP/1.1\r\nHo")
	if !strings.HasPrefix(out, "HTTP/1.1 408 Request Timeout") {
		t.Fatalf("answer %q, want a 408 at the header timeout", out)
	}
}
