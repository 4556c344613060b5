package local

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
)

// uploadAll has clients upload size bytes each (no Expect), parallel at
// a time, and checks that every one gets want, and none a reset while it
// sends or reads (curl and Node give up on a reset while they send,
// whatever answer waits for them). Odd clients read only once their
// writes end, as many simple clients do.
func uploadAll(t *testing.T, addr string, clients, parallel, size, want int) {
	t.Helper()
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	var failed atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fail := func(err error) {
				failed.Add(1)
				firstErr.Do(func() { t.Logf("first failure: %v", err) })
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", size)
				for sent := 0; sent < size; sent += len(chunk) {
					if _, err := c.Write(chunk); err != nil {
						if isConnReset(err) {
							fail(fmt.Errorf("upload: %w", err))
						}
						return
					}
				}
			}()
			if i%2 == 1 {
				<-wrote
			}
			status, _, err := readAnswer(bufio.NewReader(c))
			if err != nil || status != want {
				fail(fmt.Errorf("status %d, %v", status, err))
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d failures in %d uploads: each should get a %d and no reset", n, clients, want)
	}
}

// TestForwardUploadToADownColorGets502: the app is not running; an upload
// still gets its 502, not a reset because its body was left unread.
func TestForwardUploadToADownColorGets502(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: freePort(t), GreenPort: freePort(t)})
	uploadAll(t, proxyAddr(rp), 40, 10, 4<<20, http.StatusBadGateway)
}

// TestForwardUploadToAnAppThatDiesMidBodyGets502: the app closes a little
// way into the body without answering: the client gets a 502, not a
// connection closed without a word.
func TestForwardUploadToAnAppThatDiesMidBodyGets502(t *testing.T) {
	t.Parallel()
	app, _ := testApp(t, "dropmid")
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t)})
	uploadAll(t, proxyAddr(rp), 10, 10, 4<<20, http.StatusBadGateway)
}

// TestForward504IsCountedAs5xx: the analysis reads a silent app's 504s as
// errors of its color.
func TestForward504IsCountedAs5xx(t *testing.T) {
	t.Parallel()
	app, _ := testApp(t, "hang")
	dir := t.TempDir()
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: app, GreenPort: freePort(t), UpstreamTimeout: 200 * time.Millisecond})
	for range 2 {
		got := raw(t, proxyAddr(rp), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 504 ") {
			t.Fatalf("hung app: got\n%s\nwant 504", got)
		}
	}
	waitCounts(t, dir, map[release.Color]byClass{release.Blue: {"5xx": 2}, release.Green: {}})
}

// TestForwardDropsUnderscoreSpellingsOfForwardingHeaders: CGI, WSGI, PHP
// and Rack read X_Forwarded_Proto as the same variable as
// X-Forwarded-Proto, so an untrusted client could pass https (or an
// address) that way; nginx drops such names by default.
func TestForwardDropsUnderscoreSpellingsOfForwardingHeaders(t *testing.T) {
	t.Parallel()
	app := rawApp(t, nil)
	wary := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	trusting := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t)})
	for _, name := range []string{"X_Forwarded_Proto", "x_forwarded_for", "X-Forwarded_Host", "X_FORWARDED-PROTO"} {
		for _, rp := range []*runningProxy{wary, trusting} {
			got := raw(t, proxyAddr(rp), "GET / HTTP/1.1\r\nHost: h\r\n"+name+": spoofed\r\nX_Other: kept\r\nConnection: close\r\n\r\n")
			if !strings.Contains(got, "X_Other: kept") {
				t.Fatalf("an unrelated underscore header did not reach the app:\n%s", got)
			}
			if strings.Contains(got, "spoofed") {
				t.Errorf("%s reached the app:\n%s", name, got)
			}
		}
	}
}

// TestForwardEarlyAnswerIsCountedBeforeTheLinger: after an early 413 the
// proxy reads what the client still sends, for up to 5s; the 413 is
// counted (and the color let go, for a drain) when it is answered, not
// when that lingering ends.
func TestForwardEarlyAnswerIsCountedBeforeTheLinger(t *testing.T) {
	t.Parallel()
	app, _ := testApp(t, "early413")
	dir := t.TempDir()
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: app, GreenPort: freePort(t)})
	c, err := net.Dial("tcp", proxyAddr(rp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	if status, _, err := readAnswer(br); err != nil || status != http.StatusRequestEntityTooLarge {
		t.Fatalf("upload: %d, %v; want the app's 413", status, err)
	}
	// The client goes on sending slowly, so the proxy lingers its longest
	// (lingerTime): the count must not wait for that.
	answered := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			if _, err := io.WriteString(c, "x"); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	ac := newAdminClient(dir)
	for {
		m, err := ac.metrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if m.Colors[release.Blue].Total.ByClass["4xx"] == 1 {
			return
		}
		if time.Since(answered) > lingerTime/2 {
			t.Fatalf("the 413 was not counted in %s: it waits for the lingering close", lingerTime/2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestForwardConnectionNamedForwardingHeadersFromATrustedPeer: a header
// named in Connection is for this hop only (RFC 9110, 7.6.1), forwarding
// headers from a trusted peer included: the proxy writes its own.
func TestForwardConnectionNamedForwardingHeadersFromATrustedPeer(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: rawApp(t, nil), GreenPort: freePort(t)})
	for _, name := range []string{"X-Forwarded-For", "x-forwarded-proto", "X-Forwarded-Host", "Forwarded"} {
		got := raw(t, proxyAddr(rp), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, "+name+"\r\n"+name+": for=hop\r\n\r\n")
		if !strings.Contains(got, "HTTP/1.1 200 OK") || strings.Contains(got, "for=hop") {
			t.Errorf("%s, named in Connection, reached the app:\n%s", name, got)
		}
	}
}

// TestForwardUploadToAStuckAppIs504: an app that stops taking a request
// body (stuck, stopped) leaves the upload blocked in the socket buffers;
// after upstream-timeout with no byte taken the client gets a 504, as from
// an app that does not answer (nginx: proxy_send_timeout).
func TestForwardUploadToAStuckAppIs504(t *testing.T) {
	t.Parallel()
	app, _ := testApp(t, "stall")
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t), UpstreamTimeout: 300 * time.Millisecond})
	const size = 64 << 20 // more than the socket buffers hold
	for _, expect := range []string{"", "Expect: 100-continue\r\n"} {
		t.Run(fmt.Sprintf("expect %q", expect), func(t *testing.T) {
			c, err := net.Dial("tcp", proxyAddr(rp))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n%s\r\n", size, expect)
			go func() {
				chunk := bytes.Repeat([]byte("z"), 64<<10)
				for sent := 0; sent < size; sent += len(chunk) {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
			status, _, err := readAnswer(bufio.NewReader(c))
			if err != nil || status != http.StatusGatewayTimeout {
				t.Fatalf("upload to a stuck app: %d, %v; want 504", status, err)
			}
		})
	}
}

// TestTrustsPeerSpellings: a dual-stack listener sees IPv4 peers as
// IPv4-mapped IPv6, and link-local peers with a zone; both are matched
// against trusted-proxies as the address they are.
func TestTrustsPeerSpellings(t *testing.T) {
	p := &Proxy{opts: ProxyOptions{TrustedProxies: DefaultTrustedProxies()}}
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true}, {"127.9.8.7", true}, {"::1", true},
		{"::ffff:127.0.0.1", true}, {"::1%lo", true},
		{"10.0.0.1", false}, {"::ffff:10.0.0.1", false}, {"fe80::1%eth0", false},
		{"", false}, {"localhost", false},
	} {
		if got := p.trusts(tc.ip); got != tc.want {
			t.Errorf("trusts(%q) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}

// TestForwardOtherClientHeadersOnlyFromTrustedPeers: the other headers
// frameworks take the client's scheme or address from (Rack's
// X-Forwarded-Ssl, X-Real-IP...) pass only from a trusted peer; from any
// other, a client could claim https or another address with them.
func TestForwardOtherClientHeadersOnlyFromTrustedPeers(t *testing.T) {
	t.Parallel()
	app := rawApp(t, nil)
	wary := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	trusting := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t)})
	for _, name := range []string{"X-Real-IP", "X-Forwarded-Ssl", "x-forwarded-port", "X-Forwarded-Scheme", "Front-End-Https", "X-Client-IP", "X-Url-Scheme", "X_Forwarded_Scheme"} {
		req := "GET / HTTP/1.1\r\nHost: h\r\n" + name + ": claimed\r\nConnection: close\r\n\r\n"
		if got := raw(t, proxyAddr(wary), req); strings.Contains(got, "claimed") {
			t.Errorf("%s from an untrusted peer reached the app:\n%s", name, got)
		}
		got := raw(t, proxyAddr(trusting), req)
		if kept := strings.Contains(got, "claimed"); kept == strings.Contains(name, "_") {
			t.Errorf("%s from a trusted peer: kept %v:\n%s", name, kept, got)
		}
	}
}
