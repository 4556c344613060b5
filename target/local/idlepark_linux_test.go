package local

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Past the grace period an idle keep-alive connection is parked: no
// goroutine, no buffer, so heap and stacks together stay well under the
// 4 KB a connection may cost (issue 12), where one goroutine alone had a
// 4 KB stack at least.
func TestProxyParkedIdleConnectionsCostNoGoroutine(t *testing.T) {
	// Not parallel: it measures this process's memory.
	const n = 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 3*n {
		t.Skipf("needs %d open files, have %d", 3*n, lim.Cur)
	}
	rp := startProxy(t, ProxyOptions{StateDir: t.TempDir(), BluePort: colorServer(t, "blue", nil), GreenPort: freePort(t),
		MaxConnections: 2 * n, idleGrace: 50 * time.Millisecond})
	base := runtime.NumGoroutine()
	goroutines := 0
	heap, stack := idleConnCost(t, rp.url, n, func() {
		// Wait for the connections to be parked (or give up: the
		// measure says what is left).
		deadline := time.Now().Add(10 * time.Second)
		for goroutines = runtime.NumGoroutine(); goroutines > base+n/20 && time.Now().Before(deadline); goroutines = runtime.NumGoroutine() {
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Logf("%d idle keep-alive connections: %.1f KB heap + %.1f KB goroutine stack per connection; goroutines %d -> %d",
		n, heap/1024, stack/1024, base, goroutines)
	if goroutines > base+n/20 {
		t.Errorf("%d goroutines for %d idle connections (%d before): idle connections still hold one each", goroutines, n, base)
	}
	if heap+stack > 3072 {
		t.Errorf("an idle connection costs %.1f KB (heap and stacks), want at most 3 KB", (heap+stack)/1024)
	}
}
