//go:build unix

package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
)

// The helper process of TestProxyAdminAnswersWhenDescriptorsRunOut: a proxy
// with a descriptor limit of its own, so the flood cannot starve the test
// process or the tests running beside it.
const (
	helperDirEnv   = "OOPS_TEST_PROXY_DIR"
	helperNofile   = "OOPS_TEST_PROXY_NOFILE"
	helperPortsEnv = "OOPS_TEST_PROXY_PORTS"
)

func TestHelperProxyProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("the proxy process of TestProxyAdminAnswersWhenDescriptorsRunOut")
	}
	n, _ := strconv.ParseUint(os.Getenv(helperNofile), 10, 64)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		t.Fatalf("lower RLIMIT_NOFILE: %v", err)
	}
	var blue, green int
	fmt.Sscanf(os.Getenv(helperPortsEnv), "%d,%d", &blue, &green)
	p, err := NewProxy(ProxyOptions{StateDir: dir, BluePort: blue, GreenPort: green, DrainTimeout: time.Second,
		CheckInterval: 100 * time.Millisecond,
		Logf:          func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// The test closes stdin to stop this process.
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	met, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s %s\n", pub.Addr(), met.Addr())
	if err := p.Serve(ctx, Listeners{Public: pub, Metrics: met}); err != nil {
		t.Fatal(err)
	}
}

func TestProxyAdminAnswersWhenDescriptorsRunOut(t *testing.T) {
	t.Parallel()
	const nofile, flood = 256, 600
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 8*flood {
		t.Skipf("needs %d open files in the test process, have %d", 8*flood, lim.Cur)
	}
	// The flood comes to the public listener, or to metrics-listen (which
	// may well be reachable too).
	for _, listener := range []string{"public", "metrics"} {
		t.Run(listener, func(t *testing.T) {
			t.Parallel()
			adminUnderFlood(t, listener, nofile, flood)
		})
	}
}

func adminUnderFlood(t *testing.T, listener string, nofile, flood int) {
	dir := t.TempDir()
	blue, green := colorServer(t, "blue", nil), colorServer(t, "green", nil)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProxyProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperNofile+"="+strconv.Itoa(nofile), fmt.Sprintf("%s=%d,%d", helperPortsEnv, blue, green))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		t.Logf("proxy process log:\n%s", stderr.String())
	})
	sc := bufio.NewScanner(stdout)
	addr, metrics := "", ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
			addr, metrics, _ = strings.Cut(a, " ")
			break
		}
	}
	target := addr
	if listener == "metrics" {
		target = metrics
	}
	if addr == "" {
		t.Fatalf("proxy process did not start: %s", stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	hc := &http.Client{Timeout: 10 * time.Second}
	if body, _ := get(t, hc, "http://"+addr); body != "blue" {
		t.Fatalf("before the flood: %q", body)
	}
	// Idle connections past the descriptor limit, held open.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for fails := 0; len(conns) < flood && fails < 5; {
		c, err := net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			fails++
			continue
		}
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // let the proxy accept what it will

	admin := newAdminClient(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := admin.status(ctx, true)
	if err != nil {
		t.Fatalf("oops status under an idle flood of %d connections to the %s listener (descriptor limit %d): %v", len(conns), listener, nofile, err)
	}
	if h := st.Colors[release.Green].Health; h == nil || !h.Healthy {
		t.Errorf("health check of green under the flood: %+v", h)
	}
	if _, err := admin.switchTo(ctx, release.Green, release.Blue, 0); err != nil {
		t.Fatalf("switch under an idle flood: %v", err)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// Once the flood is gone, requests are answered again, by the new color.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := hc.Get("http://" + addr)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(b) == "green" {
				break
			}
			err = fmt.Errorf("%s: %q", res.Status, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flood: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// idleConnCost opens n keep-alive connections to the proxy at url, sends
// one request on each, and returns the heap and goroutine stack this
// process holds per connection once they are all idle (the client ends,
// a few hundred bytes each, are counted too). settle, when set, runs
// before the measure, once every connection was answered.
func idleConnCost(t testing.TB, url string, n int, settled func()) (heap, stack float64) {
	addr := strings.TrimPrefix(url, "http://")
	settle := func() runtime.MemStats {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
		runtime.ReadMemStats(&ms)
		return ms
	}
	before := settle()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var buf [512]byte
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		// The answer is small: read until its body ("blue").
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := 0
		for !strings.HasSuffix(string(buf[:got]), "blue") {
			k, err := c.Read(buf[got:])
			if err != nil {
				t.Fatalf("connection %d: %v after %q", len(conns), err, buf[:got])
			}
			got += k
		}
	}
	if settled != nil {
		settled()
	}
	after := settle()
	heap = (float64(after.HeapInuse) - float64(before.HeapInuse)) / float64(n)
	stack = (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n)
	return heap, stack
}

func TestProxyIdleConnectionsHoldNoBuffers(t *testing.T) {
	// Not parallel: it measures this process's memory.
	const n = 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 3*n {
		t.Skipf("needs %d open files, have %d", 3*n, lim.Cur)
	}
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t), MaxConnections: 2 * n})
	heap, stack := idleConnCost(t, rp.url, n, nil)
	t.Logf("%d idle keep-alive connections: %.1f KB heap + %.1f KB goroutine stack per connection", n, heap/1024, stack/1024)
	// The buffers alone were 24 KB: what is left is the connection itself.
	if heap > 4096 {
		t.Errorf("an idle connection holds %.1f KB of heap, want at most 4 KB", heap/1024)
	}
}
