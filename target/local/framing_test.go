package local

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawApp is an app on 127.0.0.1 that answers a request for a path in
// answers with that raw response, and any other with the bytes of the
// request it received (what the proxy wrote), so tests see exactly what
// reaches an app. It serves one request per connection.
func rawApp(t *testing.T, answers map[string]string) (port int) {
	t.Helper()
	return tcpApp(t, func(c net.Conn) {
		var got bytes.Buffer
		req, err := http.ReadRequest(bufio.NewReader(io.TeeReader(c, &got)))
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		if a, ok := answers[req.URL.Path]; ok {
			io.WriteString(c, a)
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", got.Len(), got.Bytes())
	})
}

// chunkedPost is a chunked request for / whose body ends with trailers.
func chunkedPost(extraHead, trailers string) string {
	return "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n" + extraHead + "\r\n5\r\nhello\r\n0\r\n" + trailers + "\r\n"
}

// TestForwardStrictFraming sends each way of bending HTTP/1.1 framing over
// a real connection, and checks what the client gets and what reaches the
// app. An answer the proxy makes itself carries a Date and no X-Oops-Color.
func TestForwardStrictFraming(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: rawApp(t, nil), GreenPort: freePort(t)})
	addr := strings.TrimPrefix(rp.url, "http://")
	manyTrailers := strings.Repeat("X-T: 1\r\n", maxHeaders+1)
	tests := []struct {
		name string
		req  string
		want []string // substrings of the raw answer (the app's answer echoes its request)
		not  []string
	}{
		// Trailers obey the header rules: a malformed one is a 400.
		{"bare CR in a request trailer", chunkedPost("", "X-A: 1\rX-B: 2\r\n"), []string{"HTTP/1.1 400 "}, []string{"X-B"}},
		{"NUL in a request trailer", chunkedPost("", "X-A: 1\x002\r\n"), []string{"HTTP/1.1 400 "}, nil},
		{"control byte in a request trailer", chunkedPost("", "X-A: \x1b[31m\r\n"), []string{"HTTP/1.1 400 "}, nil},
		{"request trailer name not a token", chunkedPost("", "X A: 1\r\n"), []string{"HTTP/1.1 400 "}, nil},
		{"space before a request trailer's colon", chunkedPost("", "X-A : 1\r\n"), []string{"HTTP/1.1 400 "}, nil},
		{"folded request trailer", chunkedPost("", "X-A: 1\r\n 2\r\n"), []string{"HTTP/1.1 400 "}, nil},
		{"too many request trailers", chunkedPost("", manyTrailers), []string{"HTTP/1.1 400 "}, nil},
		// ... and never carry framing, routing or hop-by-hop fields.
		{"framing and routing trailers dropped",
			chunkedPost("Connection: X-Hop\r\n", "Content-Length: 99\r\nTransfer-Encoding: chunked\r\nHost: evil.test\r\nConnection: close\r\nTrailer: X-Sum\r\nX-Forwarded-For: 6.6.6.6\r\nX-Hop: 1\r\nX-Sum: 42\r\n"),
			[]string{"HTTP/1.1 200 OK", "\r\n0\r\nX-Sum: 42\r\n\r\n"},
			[]string{"Content-Length: 99", "evil.test", "6.6.6.6", "X-Hop: 1"}},
		{"the Trailer header goes with a chunked request", chunkedPost("Trailer: X-Sum\r\n", "X-Sum: 42\r\n"),
			[]string{"\r\nTrailer: X-Sum\r\n", "X-Sum: 42"}, nil},

		// A malformed chunk is a 400, not a silent close.
		{"chunk size not hex", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"chunk size with a sign", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"chunk size after a space", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"chunk size overflows", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"chunk not followed by CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"chunk followed by a bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"over-long chunk extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=" + strings.Repeat("a", 5000) + "\r\nhello\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"control byte in a chunk extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=\x00\r\nhello\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"chunk extensions are dropped", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5 ; x=\"y\"\r\nhello\r\n0\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "\r\n5\r\nhello\r\n0\r\n\r\n"}, []string{"x="}},

		// Every line of a chunked body ends in CRLF: a bare LF there is
		// read as a line end by some parsers and not by others (Go's
		// CVE-2025-22871), a way to hide a request in a body.
		{"chunk size line ending in a bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\nhello\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"chunk extension ending in a bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2;\nxx\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"last chunk ending in a bare LF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"trailer line ending in a bare LF", chunkedPost("", "X-A: 1\n"), []string{"HTTP/1.1 400 "}, nil},
		{"chunked body ending in a bare LF", chunkedPost("", "")[:len(chunkedPost("", ""))-2] + "\n", []string{"HTTP/1.1 400 "}, nil},
		// HTTP/1.0 has no Transfer-Encoding: a proxy in front may have
		// framed the body another way (RFC 9112, 6.1).
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"Transfer-Encoding and Content-Length in HTTP/1.0", "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", []string{"HTTP/1.1 400 "}, nil},
		// ... nor Upgrade: an HTTP/1.0 request does not become a tunnel
		// (RFC 9110, 7.8), which a proxy in front would not expect.
		{"Upgrade in HTTP/1.0 is ignored", "GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "GET / HTTP/1.1\r\n"}, []string{"Upgrade", "websocket"}},
		// ... nor 100-continue (RFC 9110, 10.1.1): the body comes at once,
		// for an app that never sends 100.
		{"Expect in HTTP/1.0 is ignored", "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
			[]string{"HTTP/1.1 200 OK", "\r\n\r\nhello"}, nil},

		// A Host that is not a host[:port] is a 400 (RFC 9112, 3.2): it
		// would reach the app as X-Forwarded-Host too.
		{"Host with a space", "GET / HTTP/1.1\r\nHost: a.test b.test\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: user@evil.test\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"Host with a path", "GET / HTTP/1.1\r\nHost: h.test/x?y\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"Host as a list", "GET / HTTP/1.1\r\nHost: h.test, evil.test\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"empty Host passes", "GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 200 OK", "\r\nHost: \r\n"}, nil},
		{"IPv6 Host with a port passes", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 200 OK", "\r\nHost: [::1]:8080\r\n"}, nil},

		// CGI-style apps (WSGI, PHP, Rack...) read '_' in a name as '-':
		// a framing field spelled so would frame the body for the app, and
		// not for the proxy.
		{"Content_Length", "GET / HTTP/1.1\r\nHost: h\r\nContent_Length: 5\r\nConnection: close\r\n\r\nhello", []string{"HTTP/1.1 400 "}, nil},
		{"Transfer_Encoding", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"other names with '_' pass", "GET / HTTP/1.1\r\nHost: h\r\nX_Content_Length: 5\r\nConnection: close\r\n\r\n", []string{"HTTP/1.1 200 OK", "\r\nX_Content_Length: 5\r\n"}, nil},

		// Absolute-form targets become origin-form, with Host from the authority.
		{"absolute-form target", "GET http://example.test/p?q=1 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "GET /p?q=1 HTTP/1.1\r\n", "\r\nHost: example.test\r\n", "\r\nX-Forwarded-Host: example.test\r\n"}, []string{"other.test"}},
		{"absolute-form without a path", "GET HTTP://example.test:8080 HTTP/1.1\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n",
			[]string{"GET / HTTP/1.1\r\n", "\r\nHost: example.test:8080\r\n"}, nil},
		{"absolute-form with only a query", "GET https://example.test?x=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
			[]string{"GET /?x=1 HTTP/1.1\r\n"}, nil},
		{"absolute-form OPTIONS without a path", "OPTIONS http://example.test HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
			[]string{"OPTIONS * HTTP/1.1\r\n"}, nil},
		{"absolute-form HTTP/1.0 without Host", "GET http://example.test/p HTTP/1.0\r\n\r\n",
			[]string{"GET /p HTTP/1.1\r\n", "\r\nHost: example.test\r\n"}, nil},
		{"absolute-form with another scheme", "GET ftp://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"absolute-form with userinfo", "GET http://user:pw@example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"absolute-form without a host", "GET http:///p HTTP/1.1\r\nHost: example.test\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"absolute-form with a bad host", "GET http://exa\"mple.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"target in no form", "GET p HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"asterisk other than for OPTIONS", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},

		// Only HTTP/1.0 and HTTP/1.1.
		{"HTTP/1.9", "GET / HTTP/1.9\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 505 HTTP Version Not Supported"}, nil},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 505 HTTP Version Not Supported"}, nil},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 505 HTTP Version Not Supported"}, nil},
		{"malformed version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"lowercase protocol name", "GET / http/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},

		// Methods: tokens, and upper case.
		{"lowercase method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 501 Not Implemented"}, nil},
		{"mixed-case method", "Post / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", []string{"HTTP/1.1 501 Not Implemented"}, nil},
		{"method not a token", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 400 "}, nil},
		{"extension method passes", "VERSION-CONTROL /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "VERSION-CONTROL /x HTTP/1.1\r\n"}, nil},

		{"Host stays though Connection names it", "GET / HTTP/1.1\r\nHost: h.test\r\nConnection: close, host\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "\r\nHost: h.test\r\n"}, nil},

		{"CONNECT is 405", "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n", []string{"HTTP/1.1 405 Method Not Allowed"}, nil},

		// Sizes.
		{"long request line is 414", "GET /" + strings.Repeat("a", 70<<10) + " HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HTTP/1.1 414 URI Too Long"}, nil},
		{"big header section stays 431", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 1000)+"\r\n", 80) + "\r\n",
			[]string{"HTTP/1.1 431 "}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := raw(t, addr, tc.req)
			checkAnswer(t, got, tc.want, tc.not)
			if own := !strings.HasPrefix(got, "HTTP/1.1 200 "); own {
				if !strings.Contains(got, "\r\nDate: ") || strings.Contains(got, "X-Oops-Color") {
					t.Errorf("the proxy's own answer needs a Date and no X-Oops-Color:\n%.2000q", got)
				}
			}
		})
	}
}

// TestForwardStripsConnectionNamedHeaders: a header named in Connection
// is hop-by-hop whatever the length of its name; one of the same length
// not named there reaches the app.
func TestForwardStripsConnectionNamedHeaders(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: rawApp(t, nil), GreenPort: freePort(t)})
	addr := strings.TrimPrefix(rp.url, "http://")
	type pair struct{ listed, kept string }
	var tests []pair
	for n := 1; n <= 40; n++ {
		tests = append(tests, pair{strings.Repeat("q", n), strings.Repeat("k", n)})
	}
	tests = append(tests, pair{"HTTP2-Settings", "HTTP2-Settingz"}) // what curl --http2 sends
	for _, tc := range tests {
		t.Run(strconv.Itoa(len(tc.listed)), func(t *testing.T) {
			t.Parallel()
			// The header's name is in upper case, Connection's in lower:
			// names compare without case.
			got := raw(t, addr, fmt.Sprintf("GET / HTTP/1.1\r\nHost: h\r\nConnection: close, %s\r\n%s: listed\r\n%s: kept\r\n\r\n",
				strings.ToLower(tc.listed), strings.ToUpper(tc.listed), tc.kept))
			if !strings.Contains(got, "HTTP/1.1 200 OK") || !strings.Contains(got, "\r\n"+tc.kept+": kept\r\n") {
				t.Fatalf("the unlisted header %s did not reach the app:\n%q", tc.kept, got)
			}
			if strings.Contains(got, ": listed") {
				t.Errorf("%s, named in Connection, reached the app:\n%q", tc.listed, got)
			}
		})
	}
}

// TestForwardResponseTrailers: an app's trailers reach the client only
// when they are well-formed and not framing, routing or hop-by-hop fields;
// the Trailer header goes with a chunked response.
func TestForwardResponseTrailers(t *testing.T) {
	t.Parallel()
	const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close, X-Hop\r\n\r\n5\r\nhello\r\n0\r\n"
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), GreenPort: freePort(t), BluePort: rawApp(t, map[string]string{
		"/good": head + "Content-Length: 99\r\nTransfer-Encoding: chunked\r\nX-Oops-Color: green\r\nX-Hop: 1\r\nSet-Cookie: a=b\r\nX-Sum: 42\r\n\r\n",
		"/cr":   head + "X-Sum: 4\r2\r\n\r\n",
		"/nul":  head + "X-Sum: 4\x002\r\n\r\n",
		"/name": head + "X Sum: 42\r\n\r\n",
	})})
	addr := strings.TrimPrefix(rp.url, "http://")
	tests := []struct {
		name, req string
		want      []string
		not       []string
		complete  bool // the chunked body ends with the X-Sum trailer
	}{
		{"allowed trailers pass, the rest are dropped", "GET /good HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"\r\nTrailer: X-Sum\r\n", "\r\nTransfer-Encoding: chunked\r\n", "\r\n0\r\nX-Sum: 42\r\n\r\n"},
			[]string{"Content-Length: 99", "X-Oops-Color: green", "X-Hop", "a=b"}, true},
		{"an HTTP/1.0 client gets neither trailers nor Trailer", "GET /good HTTP/1.0\r\n\r\n",
			[]string{"HTTP/1.1 200 OK", "\r\n\r\nhello"}, []string{"Trailer", "X-Sum: 42"}, false},
		{"bare CR in a trailer cuts the response", "GET /cr HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", nil, []string{"X-Sum: 4"}, false},
		{"NUL in a trailer cuts the response", "GET /nul HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", nil, []string{"X-Sum: 4"}, false},
		{"malformed trailer name cuts the response", "GET /name HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", nil, []string{"X Sum"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := raw(t, addr, tc.req)
			checkAnswer(t, got, tc.want, tc.not)
			// A broken trailer section must not reach the client as the
			// end of a complete response.
			if tc.complete != strings.HasSuffix(got, "\r\n0\r\nX-Sum: 42\r\n\r\n") || !tc.complete && strings.HasSuffix(got, "\r\n\r\n") {
				t.Errorf("want complete: %v:\n%q", tc.complete, got)
			}
		})
	}
}

// lockedLog collects what the proxy logs.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", args...)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestForward502SaysNothingOfColorsOrPorts: the public gets a plain 502
// with a Date; the color and port go to the log.
func TestForward502SaysNothingOfColorsOrPorts(t *testing.T) {
	t.Parallel()
	down := freePort(t)
	garbage := rawApp(t, map[string]string{"/": "SPLAT\r\n\r\n"})
	tests := []struct {
		name string
		port int
	}{
		{"app down", down},
		{"app answers garbage", garbage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := &lockedLog{}
			rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: tc.port, GreenPort: freePort(t), Logf: log.logf})
			got := raw(t, strings.TrimPrefix(rp.url, "http://"), "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			port := strconv.Itoa(tc.port)
			if !strings.HasPrefix(got, "HTTP/1.1 502 Bad Gateway\r\n") || !strings.Contains(got, "\r\nDate: ") {
				t.Fatalf("want a 502 with a Date:\n%q", got)
			}
			if strings.Contains(got, "blue") || strings.Contains(got, port) {
				t.Errorf("the public 502 names the color or port %s:\n%q", port, got)
			}
			if l := log.String(); !strings.Contains(l, "blue") || !strings.Contains(l, port) {
				t.Errorf("the log lacks the color and port %s:\n%s", port, l)
			}
		})
	}
}

// keepAliveApp is an app on 127.0.0.1 that keeps its connections open,
// as the proxy's pool expects, and answers a request for a path in
// answers with those raw bytes, one write per part (50ms apart), then
// sends the path on the returned channel; any other request gets "ok".
func keepAliveApp(t *testing.T, answers map[string][]string) (port int, wrote <-chan string) {
	t.Helper()
	done := make(chan string, 16)
	port = tcpApp(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			parts, ok := answers[req.URL.Path]
			if !ok {
				parts = []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}
			}
			for i, p := range parts {
				if i > 0 {
					// So that the proxy is done with the previous part.
					time.Sleep(50 * time.Millisecond)
				}
				if _, err := io.WriteString(c, p); err != nil {
					return
				}
			}
			if ok {
				done <- req.URL.Path
			}
		}
	})
	return port, done
}

// TestForwardAppFraming: what an app sends beyond its response's framing
// (a body to HEAD, 204 or 304, bytes past Content-Length or the last
// chunk) never reaches another client as the answer to its request, and
// a status line that could split the response is a 502.
func TestForwardAppFraming(t *testing.T) {
	t.Parallel()
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED!"
	cl := strconv.Itoa(len(smuggled))
	tests := []struct {
		name   string
		req    string   // the first client's request, for /x
		answer []string // the app's answer to it, in writes
		want   []string // in the first client's answer
		not    []string
	}{
		{"body to HEAD", "HEAD /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\nContent-Length: " + cl + "\r\n\r\n" + smuggled},
			[]string{"HTTP/1.1 200 OK", "\r\nContent-Length: " + cl + "\r\n"}, []string{"PWNED"}},
		{"body to HEAD in a second write", "HEAD /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\nContent-Length: " + cl + "\r\n\r\n", smuggled},
			[]string{"HTTP/1.1 200 OK"}, []string{"PWNED"}},
		{"body to 204", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 204 No Content\r\nContent-Length: " + cl + "\r\n\r\n" + smuggled},
			[]string{"HTTP/1.1 204 No Content"}, []string{"PWNED", "Content-Length"}}, // RFC 9110, 8.6
		{"body to 304", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)},
			[]string{"HTTP/1.1 304 Not Modified"}, []string{"PWNED"}},
		{"bytes past Content-Length", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" + smuggled},
			[]string{"HTTP/1.1 200 OK", "\r\n\r\nhi"}, []string{"PWNED"}},
		// Both framings from an app hint at an injected header (RFC 9112,
		// 6.3): chunked wins, and the connection is not used again.
		{"Content-Length and Transfer-Encoding", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(5+len(smuggled)) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", smuggled},
			[]string{"HTTP/1.1 200 OK", "\r\n0\r\n\r\n"}, []string{"PWNED", "Content-Length"}},
		{"bytes past the last chunk", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" + smuggled},
			[]string{"HTTP/1.1 200 OK", "\r\n0\r\n\r\n"}, []string{"PWNED"}},
		// A bare CR or other control byte in the reason phrase, as in a
		// header, is a line end to some clients.
		{"bare CR in the reason phrase", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 OK\rSet-Cookie: session=attacker\r\nContent-Length: 2\r\n\r\nok"},
			[]string{"HTTP/1.1 502 Bad Gateway"}, []string{"session=attacker"}},
		{"NUL in the reason phrase", "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			[]string{"HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok"},
			[]string{"HTTP/1.1 502 Bad Gateway"}, []string{"\x00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			port, wrote := keepAliveApp(t, map[string][]string{"/x": tc.answer})
			rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: port, GreenPort: freePort(t)})
			addr := strings.TrimPrefix(rp.url, "http://")
			got := raw(t, addr, tc.req)
			checkAnswer(t, got, tc.want, tc.not)
			<-wrote // all the app's bytes are on their way to the proxy
			// The next client, on the app connection the proxy keeps,
			// gets its own answer.
			for range 2 {
				if got := raw(t, addr, "GET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, "\r\n\r\nok") {
					t.Fatalf("the next client got another answer than its own:\n%q", got)
				}
			}
		})
	}
}
