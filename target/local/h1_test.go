package local

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzRequestHead: whatever a client sends, the parser does not panic, and
// a request it accepts is written to the app as a head that parses back to
// the same method, target and framing (nothing can be smuggled through a
// disagreement between the two).
func FuzzRequestHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nExpect: 100-continue\r\n\r\n",
		"\r\nGET / HTTP/1.1\nHost: h\n\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var h head
		if err := h.readRequest(bufio.NewReaderSize(strings.NewReader(in), clientReadBuf)); err != nil {
			return
		}
		out := appendRequestHead(nil, &h, "127.0.0.1", "127.0.0.1:1")
		var back head
		if err := back.readRequest(bufio.NewReader(bytes.NewReader(out))); err != nil {
			t.Fatalf("accepted %q but wrote %q, which does not parse: %v", in, out, err)
		}
		same := bytes.Equal(h.get(h.method), back.get(back.method)) && bytes.Equal(h.get(h.target), back.get(back.target)) &&
			h.chunked == back.chunked && h.contentLength == back.contentLength && h.wantsUpgrade() == back.wantsUpgrade()
		if !same {
			t.Fatalf("accepted %q, wrote %q: method/target/framing differ", in, out)
		}
	})
}

// benchHead is a browser's request as the proxy typically sees it.
const benchHead = "GET /assets/app.js?v=3 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n" +
	"Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nConnection: keep-alive\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\nReferer: http://example.test/\r\n\r\n"

// BenchmarkRequestHead: reading a request head and writing it for the app,
// the per-request work of the parser (allocations should stay at zero).
func BenchmarkRequestHead(b *testing.B) {
	var h head
	var out []byte
	r := strings.NewReader(benchHead)
	br := bufio.NewReaderSize(r, clientReadBuf)
	b.SetBytes(int64(len(benchHead)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(benchHead)
		br.Reset(r)
		if err := h.readRequest(br); err != nil {
			b.Fatal(err)
		}
		out = appendRequestHead(out[:0], &h, "127.0.0.1", "127.0.0.1:1")
	}
}

// BenchmarkChunked: copying a chunked body of small chunks with a trailer.
func BenchmarkChunked(b *testing.B) {
	body := strings.Repeat("400\r\n"+strings.Repeat("x", 0x400)+"\r\n", 16) + "0\r\nX-Checksum: abc\r\n\r\n"
	r := strings.NewReader(body)
	br := bufio.NewReaderSize(r, appReadBuf)
	bw := bufio.NewWriterSize(io.Discard, clientWriteBuf)
	buf := make([]byte, copyBuf)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		br.Reset(r)
		if err := copyChunked(bw, br, false, buf); err != nil {
			b.Fatal(err)
		}
	}
}
