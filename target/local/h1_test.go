package local

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// FuzzRequestHead: whatever a client sends, the parser does not panic, and
// a request it accepts is written to the app as a head that parses back to
// the same method, target and framing (nothing can be smuggled through a
// disagreement between the two), in origin form, with one Host that is
// also X-Forwarded-Host.
func FuzzRequestHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nExpect: 100-continue\r\n\r\n",
		"\r\nGET / HTTP/1.1\nHost: h\n\n",
		// The attacks of issue 12 and 21, refused or made harmless.
		"GET http://example.test/p?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n",
		"OPTIONS HTTP://example.test:8080 HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET https://example.test?x HTTP/1.0\r\n\r\n",
		"GET http://user:pw@example.test/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET ftp://example.test/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.9\r\nHost: h\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
		"get / HTTP/1.1\r\nHost: h\r\n\r\n",
		"VERSION-CONTROL / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nConnection: HTTP2-Settings, te\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nConnection: host\r\n\r\n",
		"GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: user@evil.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h.test/x, evil.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost:\r\n\r\n",
		"GET http://[::1]:8080/p HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent_Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTRANSFER_ENCODING: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var h head
		if err := h.readRequest(bufio.NewReaderSize(strings.NewReader(in), clientReadBuf)); err != nil {
			return
		}
		out := appendRequestHead(nil, &h, "127.0.0.1", "127.0.0.1:1", len(in)%2 == 0)
		var back head
		// Read back as the proxy reads: a header line may be as long as
		// its buffer; the headers it adds may take a head near the size
		// limit past it, which is the app's to judge.
		err := back.readRequest(bufio.NewReaderSize(bytes.NewReader(out), clientReadBuf))
		if errors.Is(err, errHeadTooLarge) && len(out) > maxHeadBytes {
			return
		}
		if err != nil {
			t.Fatalf("accepted %q but wrote %q, which does not parse: %v", in, out, err)
		}
		same := bytes.Equal(h.get(h.method), back.get(back.method)) && bytes.Equal(h.get(h.target), back.get(back.target)) &&
			h.chunked == back.chunked && h.contentLength == back.contentLength && h.wantsUpgrade() == back.wantsUpgrade()
		if !same {
			t.Fatalf("accepted %q, wrote %q: method/target/framing differ", in, out)
		}
		if target := back.get(back.target); target[0] != '/' && string(target) != "*" && string(back.get(back.method)) != "CONNECT" {
			t.Fatalf("accepted %q, wrote %q: target not in origin form", in, out)
		}
		var hosts, xfh [][]byte
		for _, f := range back.fields {
			switch name := back.get(f.name); {
			case bytes.EqualFold(name, []byte("host")):
				hosts = append(hosts, back.get(f.value))
			case bytes.EqualFold(name, []byte("x-forwarded-host")):
				xfh = append(xfh, back.get(f.value))
			}
		}
		if len(hosts) != 1 || len(xfh) != 1 || !bytes.Equal(hosts[0], xfh[0]) ||
			(h.authority.e > h.authority.s && !bytes.Equal(hosts[0], h.get(h.authority))) {
			t.Fatalf("accepted %q, wrote %q: Host %q, X-Forwarded-Host %q", in, out, hosts, xfh)
		}
	})
}

// FuzzChunked: whatever a client or app sends as a chunked body, copying
// it does not panic, and what it accepts is written in a normal form that
// copies to itself again (the receiver reads what the proxy read), with
// only allowed, well-formed trailers.
func FuzzChunked(f *testing.F) {
	for _, seed := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=\"v\"\r\nhello\r\n6 ; a=b\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n",
		"A\nabcdefghij\r\n0\n\n",
		// The attacks of issue 12, refused or dropped.
		"5\r\nhello\r\n0\r\nX-A: 1\rX-B: 2\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-A: 1\x002\r\n\r\n",
		"5\r\nhello\r\n0\r\nContent-Length: 99\r\nHost: evil\r\nTransfer-Encoding: chunked\r\nX-Ok: 1\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-A : 1\r\n\r\n",
		"5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n",
		"zz\r\nhello\r\n0\r\n\r\n",
		"+5\r\nhello\r\n0\r\n\r\n",
		" 5\r\nhello\r\n0\r\n\r\n",
		"ffffffffffffffff\r\nhello\r\n",
		"5\r\nhelloXY0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"5;x=\x00\r\nhello\r\n0\r\n\r\n",
		"5;" + strings.Repeat("a", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n",
		// Bare LFs, a line end to some parsers and not to others.
		"2;\nxx\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\n\r\n",
		"5\r\nhello\r\n0\r\nX-A: 1\n\r\n",
		"5\r\nhello\r\n0\r\n\n",
	} {
		f.Add(seed)
	}
	buf := make([]byte, 64)
	f.Fuzz(func(t *testing.T, in string) {
		var h head
		h.reset()
		h.connTokens = append(h.connTokens, h.add([]byte("x-hop")))
		copyOnce := func(in string) (string, error) {
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			err := copyChunked(bw, bufio.NewReaderSize(strings.NewReader(in), 4096+maxChunkLine), &h, false, buf)
			_ = bw.Flush()
			return out.String(), err
		}
		out, err := copyOnce(in)
		if err != nil {
			return
		}
		again, err := copyOnce(out)
		if err != nil || again != out {
			t.Fatalf("accepted %q, wrote %q, which copies to %q (%v)", in, out, again, err)
		}
		// Walk the normal form to its trailers: size CRLF data CRLF ... 0 CRLF.
		rest := out
		for {
			line, after, _ := strings.Cut(rest, "\r\n")
			n, perr := strconv.ParseInt(line, 16, 64)
			if perr != nil || int64(len(after)) < n+2 {
				t.Fatalf("accepted %q, wrote %q: not a normal chunked body at %q", in, out, rest)
			}
			if rest = after[n:]; n == 0 {
				break
			}
			rest = rest[2:]
		}
		trailers := rest
		for line := range strings.SplitSeq(strings.TrimSuffix(trailers, "\r\n\r\n"), "\r\n") {
			if name, _, _ := strings.Cut(line, ":"); line != "" && !h.trailerAllowed([]byte(name)) {
				t.Fatalf("accepted %q, wrote %q: trailer %q passed", in, out, line)
			}
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
		out = appendRequestHead(out[:0], &h, "127.0.0.1", "127.0.0.1:1", true)
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
		if err := copyChunked(bw, br, &head{}, false, buf); err != nil {
			b.Fatal(err)
		}
	}
}
