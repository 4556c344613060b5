package local

import (
	"bufio"
	"bytes"
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
		out := appendRequestHead(nil, &h, "127.0.0.1", "127.0.0.1:1", len(in)%2 == 0)
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
