package local

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fixedApp is an app on 127.0.0.1 that answers every request with a fixed
// 200 and allocates nothing per request, so that a benchmark's allocations
// are the proxy's own.
func fixedApp(tb testing.TB) int {
	tb.Helper()
	return tcpApp(tb, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if err := skipHead(br); err != nil {
				return
			}
			if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
				return
			}
		}
	})
}

// skipHead reads one message head (no body), allocating nothing.
func skipHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			return nil
		}
	}
}

// BenchmarkForward is one keep-alive client sending GETs through the proxy
// to rawApp: the cost and the allocations of the data path per request.
func BenchmarkForward(b *testing.B) {
	rp := startProxy(b, ProxyOptions{StateDir: b.TempDir(), BluePort: fixedApp(b), GreenPort: freePort(b), CheckInterval: time.Hour})
	c, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	body := make([]byte, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := skipHead(br); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, body); err != nil || !bytes.Equal(body, []byte("ok")) {
			b.Fatalf("body %q: %v", body, err)
		}
	}
}
