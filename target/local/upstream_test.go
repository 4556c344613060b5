package local

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The apps of these tests run as real processes: this test binary started
// again with OOPS_TEST_APP set to the behaviour wanted. Each listens on
// 127.0.0.1, prints its port, and serves until killed.
func TestMain(m *testing.M) {
	if mode := os.Getenv("OOPS_TEST_APP"); mode != "" {
		runTestApp(mode)
		return
	}
	os.Exit(m.Run())
}

func runTestApp(mode string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", l.Addr().(*net.TCPAddr).Port)
	if mode == "early413" {
		// Refuses every upload before reading it, as an upload limit does.
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthcheck" {
				return
			}
			w.Header().Set("Connection", "close")
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		}))
		return
	}
	var out sync.Mutex
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					if !errors.Is(err, io.EOF) {
						// What nginx answers to what it cannot parse.
						io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\nbad request\n")
					}
					return
				}
				switch {
				case req.URL.Path == "/healthcheck":
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				case mode == "never100":
					// An HTTP/1.0 server (Python's http.server): no 100
					// Continue, it just reads the body.
					body, _ := io.ReadAll(req.Body)
					msg := fmt.Sprintf("len=%d sha=%x", len(body), sha256.Sum256(body))
					fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
					return
				case mode == "nginx" && req.URL.Path == "/missing":
					// nginx to an Expect: 100-continue upload it will not
					// take: a final answer, no 100, then it reads (and
					// discards) the body before the next request.
					io.WriteString(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n")
					io.Copy(io.Discard, req.Body)
				case mode == "nginx":
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
				case mode == "stall":
					// Stuck (a deadlock, a stopped process): takes the
					// head, never reads the body nor answers.
					select {}
				case mode == "dropmid":
					// Crashes a little way into an upload: no answer, the
					// rest of the body unread.
					io.CopyN(io.Discard, req.Body, 64<<10)
					return
				case mode == "hang":
					// Takes the request and never answers; says when the
					// proxy gives up on it.
					io.Copy(io.Discard, br)
					out.Lock()
					fmt.Println("closed")
					out.Unlock()
					return
				}
			}
		}()
	}
}

// testApp starts the test binary as an app process in mode; lines gets
// what it prints after its port.
func testApp(t *testing.T, mode string) (port int, lines <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OOPS_TEST_APP="+mode)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("test app %s printed no port", mode)
	}
	if _, err := fmt.Sscan(sc.Text(), &port); err != nil {
		t.Fatalf("test app %s: %q is not a port", mode, sc.Text())
	}
	ch := make(chan string, 16)
	go func() {
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return port, ch
}

func proxyAddr(rp *runningProxy) string { return strings.TrimPrefix(rp.url, "http://") }

// forwardedEcho answers the forwarding headers it got.
func forwardedEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%q xfh=%q xfp=%q fwd=%q", strings.Join(r.Header.Values("X-Forwarded-For"), "|"),
			strings.Join(r.Header.Values("X-Forwarded-Host"), "|"), strings.Join(r.Header.Values("X-Forwarded-Proto"), "|"),
			strings.Join(r.Header.Values("Forwarded"), "|"))
	})
}

// TestForwardedHeadersFromTrustedAndOtherPeers: a TLS terminator on a
// trusted address says the client used https; anyone else cannot.
func TestForwardedHeadersFromTrustedAndOtherPeers(t *testing.T) {
	t.Parallel()
	app := colorServer(t, "blue", forwardedEcho())
	trusting := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t)})
	// 127.0.0.1 is not in 10.0.0.0/8: the test's client is untrusted there
	// (nothing ever dials 10.x).
	wary := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	const sent = "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: shop.example\r\nX-Forwarded-Proto: https\r\nForwarded: for=203.0.113.9;proto=https\r\n"
	tests := []struct {
		name    string
		rp      *runningProxy
		headers string
		want    string
	}{
		{"trusted peer: kept and extended", trusting, sent,
			`xff="203.0.113.9, 127.0.0.1" xfh="shop.example" xfp="https" fwd="for=203.0.113.9;proto=https, for=127.0.0.1;host=h;proto=http"`},
		{"trusted peer, nothing sent: what the proxy saw", trusting, "",
			`xff="127.0.0.1" xfh="h" xfp="http" fwd=""`},
		{"untrusted peer: replaced", wary, sent,
			`xff="127.0.0.1" xfh="h" xfp="http" fwd=""`},
		{"untrusted peer, nothing sent", wary, "",
			`xff="127.0.0.1" xfh="h" xfp="http" fwd=""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := raw(t, proxyAddr(tc.rp), "GET / HTTP/1.1\r\nHost: h\r\n"+tc.headers+"Connection: close\r\n\r\n")
			if !strings.HasSuffix(got, tc.want) {
				t.Errorf("the app got\n%s\nwant %s", got[strings.LastIndex(got, "\r\n")+2:], tc.want)
			}
		})
	}
}

// readAnswer reads one final answer (skipping 100 Continue).
func readAnswer(br *bufio.Reader) (status int, body string, err error) {
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, "", err
		}
		if res.StatusCode == http.StatusContinue {
			continue
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b), err
	}
}

// TestForwardUploadToAnAppThatNeverSends100: the body goes to the app
// whether the client waits for a 100 (the proxy sends one when the app
// does not) or sends it after its own short wait, as curl does.
func TestForwardUploadToAnAppThatNeverSends100(t *testing.T) {
	t.Parallel()
	app, _ := testApp(t, "never100")
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t)})
	body := strings.Repeat("upload ", 10000)
	want := fmt.Sprintf("len=%d sha=%x", len(body), sha256.Sum256([]byte(body)))
	for _, tc := range []struct {
		waitFor100, chunked bool
	}{{true, false}, {false, false}, {true, true}} {
		t.Run(fmt.Sprintf("client waits for 100: %v, chunked: %v", tc.waitFor100, tc.chunked), func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", proxyAddr(rp))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			br := bufio.NewReader(c)
			framing, body := fmt.Sprintf("Content-Length: %d", len(body)), body
			if tc.chunked {
				framing, body = "Transfer-Encoding: chunked", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
			}
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: h\r\n%s\r\nExpect: 100-continue\r\n\r\n", framing)
			if tc.waitFor100 {
				res, err := http.ReadResponse(br, nil)
				if err != nil || res.StatusCode != http.StatusContinue {
					t.Fatalf("waiting for 100 Continue: %v %v", res, err)
				}
			} else {
				time.Sleep(200 * time.Millisecond) // curl waits 1s
			}
			io.WriteString(c, body)
			status, got, err := readAnswer(br)
			if err != nil || status != http.StatusOK || got != want {
				t.Fatalf("upload answered %d %q, %v; want 200 %q", status, got, err, want)
			}
		})
	}
}

// TestForwardAppConnectionSpoiledByAnExpectAnswerIsNotReused: nginx
// answers 404 to an Expect: 100-continue upload without a 100, then waits
// for (and discards) the body: that connection must not carry the next
// request.
func TestForwardAppConnectionSpoiledByAnExpectAnswerIsNotReused(t *testing.T) {
	t.Parallel()
	app, _ := testApp(t, "nginx")
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t)})
	c, err := net.Dial("tcp", proxyAddr(rp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, "PUT /missing HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	status, _, err := readAnswer(bufio.NewReader(c))
	if err != nil || status != http.StatusNotFound {
		t.Fatalf("upload to /missing: %d, %v; want the app's 404", status, err)
	}
	for i := range 3 {
		got := raw(t, proxyAddr(rp), "GET /ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK") || !strings.HasSuffix(got, "ok\n") {
			t.Fatalf("GET %d after the refused upload got:\n%s", i, got)
		}
	}
}

// TestForwardHungAppIs504: no answer within upstream-timeout is a 504, and
// the app's connection is closed; the clock starts once the request body
// is sent, so a slow upload is not cut.
func TestForwardHungAppIs504(t *testing.T) {
	t.Parallel()
	app, lines := testApp(t, "hang")
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t), UpstreamTimeout: 300 * time.Millisecond})
	got := raw(t, proxyAddr(rp), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 504 Gateway Timeout") {
		t.Fatalf("hung app: got\n%s\nwant 504", got)
	}
	select {
	case l := <-lines:
		if l != "closed" {
			t.Fatalf("app printed %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy kept the hung app's connection open")
	}

	// An upload slower than the timeout still reaches the app (which then
	// does not answer: 504 after the body, not during it).
	c, err := net.Dial("tcp", proxyAddr(rp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nab")
	time.Sleep(900 * time.Millisecond) // three timeouts
	io.WriteString(c, "cd")
	status, _, err := readAnswer(bufio.NewReader(c))
	if err != nil || status != http.StatusGatewayTimeout {
		t.Fatalf("slow upload to a hung app: %d, %v; want 504 after the body", status, err)
	}
}

// TestForwardEarlyAnswerIsNotLostToAReset: many clients upload to an app
// that refuses uploads before reading them; every one gets the 413, none a
// reset (read or write).
func TestForwardEarlyAnswerIsNotLostToAReset(t *testing.T) {
	t.Parallel()
	app, _ := testApp(t, "early413")
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: app, GreenPort: freePort(t)})
	// Half the clients read while they upload; the others, like many
	// simple clients, only read once their writes fail or end.
	uploadAll(t, proxyAddr(rp), 200, 20, 8<<20, http.StatusRequestEntityTooLarge)
}

// TestForwardExpectUploadsKeepConnectionsAlive: uploads with Expect:
// 100-continue to an app that sends its 100 leave both connections fit
// for the next request.
func TestForwardExpectUploadsKeepConnectionsAlive(t *testing.T) {
	t.Parallel()
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", echoApp()), GreenPort: freePort(t)})
	c, err := net.Dial("tcp", proxyAddr(rp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	for i := range 3 {
		body := strings.Repeat(fmt.Sprint(i), 100<<10)
		fmt.Fprintf(c, "PUT /p HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusContinue {
			t.Fatalf("upload %d: waiting for 100 Continue: %v %v", i, res, err)
		}
		io.WriteString(c, body)
		res, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		got, _ := io.ReadAll(res.Body)
		want := fmt.Sprintf("PUT /p len=%d sha=%x", len(body), sha256.Sum256([]byte(body)))
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(got), want) || res.Close {
			t.Fatalf("upload %d: %s close=%v %q; want 200, kept alive, %q", i, res.Status, res.Close, got, want)
		}
	}
}
