package local

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
)

// echoApp answers what it got: method, path, body digest and the headers
// the proxy is responsible for.
func echoApp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/notmodified":
			w.WriteHeader(http.StatusNotModified)
			return
		case "/big":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", fmt.Sprint(1<<20))
			_, _ = w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16)) // 1 MiB
			return
		case "/toolarge":
			// Answers before reading the body, as an upload limit does.
			w.Header().Set("Connection", "close")
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		case "/chunked":
			rc := http.NewResponseController(w)
			for i := range 3 {
				fmt.Fprintf(w, "part %d\n", i)
				_ = rc.Flush()
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Hop", "kept")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprintf(w, "%s %s len=%d sha=%x xff=%q host=%q conn=%q te=%q\n", r.Method, r.URL.RequestURI(), len(body),
			sha256.Sum256(body), r.Header.Get("X-Forwarded-For"), r.Host, r.Header.Get("Connection"), r.Header.Get("Te"))
	})
}

// raw sends raw bytes to the proxy and returns everything it answers
// until it closes the connection.
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

func TestForwardHTTPSemantics(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", echoApp()), GreenPort: freePort(t)})
	addr := strings.TrimPrefix(rp.url, "http://")
	big := strings.Repeat("x", 3<<20)
	tests := []struct {
		name string
		req  string
		want []string // substrings of the raw answer
		not  []string
	}{
		{"GET, close", "GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "X-Oops-Color: blue", `GET /a?b=c len=0`, `xff="127.0.0.1"`, `host="example.test"`, "Connection: close", "X-Hop: kept"},
			[]string{"Keep-Alive"}},
		{"X-Forwarded-For is appended to", "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n",
			[]string{`xff="10.1.2.3, 127.0.0.1"`}, nil},
		{"hop-by-hop headers stay behind", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nTE: trailers\r\n\r\n",
			[]string{`conn=""`, `te=""`}, nil},
		{"POST with Content-Length", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			[]string{fmt.Sprintf("POST /p len=5 sha=%x", sha256.Sum256([]byte("hello")))}, nil},
		{"POST chunked", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
			[]string{fmt.Sprintf("POST /p len=11 sha=%x", sha256.Sum256([]byte("hello world")))}, nil},
		{"large upload", "PUT /p HTTP/1.1\r\nHost: h\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\nConnection: close\r\n\r\n" + big,
			[]string{fmt.Sprintf("PUT /p len=%d sha=%x", len(big), sha256.Sum256([]byte(big)))}, nil},
		{"Expect: 100-continue", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nok",
			[]string{"HTTP/1.1 100 Continue", "POST /p len=2"}, nil},
		{"HEAD has no body", "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "Content-Length: "}, []string{"len=0"}},
		{"204", "GET /nocontent HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 204 No Content"}, nil},
		{"304", "GET /notmodified HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 304 Not Modified"}, nil},
		{"HTTP/1.0 client gets a de-chunked body and close", "GET /chunked HTTP/1.0\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "Connection: close", "part 0\npart 1\npart 2\n"}, []string{"Transfer-Encoding"}},
		{"chunked passes through", "GET /chunked HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"Transfer-Encoding: chunked", "7\r\npart 0\n\r\n", "0\r\n\r\n"}, nil},
		{"pipelined requests", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"GET /1 len=0", "GET /2 len=0"}, nil},
		{"Content-Length with Transfer-Encoding refused", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
			[]string{"HTTP/1.1 400 Bad Request"}, []string{"X-Oops-Color"}},
		{"two different Content-Lengths refused", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
			[]string{"HTTP/1.1 400 Bad Request"}, nil},
		{"space before colon refused", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, nil},
		{"folded header refused", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, nil},
		{"missing Host refused", "GET / HTTP/1.1\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, nil},
		{"other transfer codings refused", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", []string{"HTTP/1.1 501 Not Implemented"}, nil},
		{"huge header refused", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", []string{"HTTP/1.1 431"}, nil},
		{"garbage refused", "HELLO\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, nil},
		{"bare CR in a header value refused", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\rX-B: 2\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, nil},
		{"control byte in the target refused", "GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 400 Bad Request"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := raw(t, addr, tc.req)
			checkAnswer(t, got, tc.want, tc.not)
		})
	}
}

func TestForwardLargeResponseAndKeepAlive(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", echoApp()), GreenPort: freePort(t)})
	c := &http.Client{}
	for range 3 {
		body, h := get(t, c, rp.url+"/big")
		if len(body) != 1<<20 || h.Get("Content-Length") != fmt.Sprint(1<<20) {
			t.Fatalf("1 MiB response: got %d bytes, Content-Length %q", len(body), h.Get("Content-Length"))
		}
	}
}

func TestForwardRetriesAnAppConnectionClosedWhileIdle(t *testing.T) {
	t.Parallel()
	// An app that closes every connection after one response (as one with
	// a short idle timeout would): pooled connections go stale.
	var served atomic.Int64
	port := tcpApp(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		n := served.Add(1)
		// Keep-alive promised, then the connection is closed.
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(n)), n)
	})
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: port, GreenPort: freePort(t)})
	for i := range 5 {
		if _, err := http.Get(rp.url + "/"); err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	// A POST cannot be retried: it must not be sent on a stale connection.
	for i := range 3 {
		res, err := http.Post(rp.url+"/", "text/plain", strings.NewReader("x"))
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("POST %d: %v %v", i, res, err)
		}
		res.Body.Close()
	}
}

func TestForwardAppDownIs502(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: freePort(t), GreenPort: freePort(t)})
	res, err := http.Get(rp.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	// What the body says (nothing of colors or ports) is checked in
	// TestForward502SaysNothingOfColorsOrPorts.
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("app down: %s %q", res.Status, body)
	}
}

func TestForwardPassesOnAnEarlyAnswerToAnUpload(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", echoApp()), GreenPort: freePort(t)})
	c, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	const size = 64 << 20
	go func() {
		fmt.Fprintf(c, "POST /toolarge HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", size)
		chunk := bytes.Repeat([]byte("x"), 1<<16)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return // the proxy closed: expected once it answered
			}
		}
	}()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to an upload the app refused early: %v", err)
	}
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %s, want 413", res.Status)
	}
}

// tcpApp is an app on 127.0.0.1 that runs serve on each connection it
// accepts (and closes it after), for tests that need to see or shape the
// bytes an app exchanges with the proxy. It stops with the test.
func tcpApp(tb testing.TB, serve func(c net.Conn)) (port int) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// checkAnswer fails t unless the raw answer got has every string of want
// and none of not.
func checkAnswer(t *testing.T, got string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("answer lacks %q:\n%.2000q", w, got)
		}
	}
	for _, n := range not {
		if strings.Contains(got, n) {
			t.Errorf("answer has %q:\n%.2000q", n, got)
		}
	}
}

// TestForwardPanicEndsOneConnectionNotTheProxy: a bug met by one request
// (a panic in the data path) closes that client's connection; the proxy
// keeps serving everyone else, lets the color go for drains, and says so.
func TestForwardPanicEndsOneConnectionNotTheProxy(t *testing.T) {
	t.Parallel()
	log := &lockedLog{}
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", echoApp()), GreenPort: freePort(t),
		Logf: log.logf,
		beforeForward: func(_, target []byte) {
			if string(target) == "/boom" {
				panic("a bug")
			}
		}})
	if got := raw(t, proxyAddr(rp), "GET /boom HTTP/1.1\r\nHost: h\r\n\r\n"); got != "" {
		t.Errorf("the request that met the panic got %q, want the connection closed", got)
	}
	for i := range 3 {
		res, err := http.Get(rp.url + "/after")
		if err != nil {
			t.Fatalf("request %d after the panic: %v", i, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("request %d after the panic: %s", i, res.Status)
		}
	}
	// A request leaves the count just after its answer is written, so
	// the last one may still be counted when the client has read it: wait
	// a moment; a request the panic left counted stays so.
	deadline := time.Now().Add(2 * time.Second)
	n := rp.p.InFlight(release.Blue)
	for n != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		n = rp.p.InFlight(release.Blue)
	}
	if n != 0 {
		t.Errorf("%d requests still in flight on blue after the panic: a drain would wait for them", n)
	}
	if !strings.Contains(log.String(), "panic serving") || !strings.Contains(log.String(), "a bug") {
		t.Errorf("the log does not say what happened:\n%s", log.String())
	}
}
