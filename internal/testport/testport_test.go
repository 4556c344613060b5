package testport

import (
	"net"
	"sync"
	"testing"
)

// Ports held at once are all different: without the locks, 400 draws from
// ~12,000 ports collide almost surely (birthday bound).
func TestReservedPortsAreDistinct(t *testing.T) {
	const n = 400
	ports := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ports[i] = Get(t) })
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// A port given back can be reserved again (the lock is released).
func TestReleaseGivesThePortBack(t *testing.T) {
	p, release, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lock(lockPath(p)); ok {
		t.Fatalf("port %d could be locked while reserved", p)
	}
	release()
	unlock, ok := lock(lockPath(p))
	if !ok {
		t.Fatalf("port %d still locked after release", p)
	}
	unlock()
}

// The kernel never gives a reserved port to a listener on port 0: a proxy
// or test server started later cannot take a color's port.
func TestPortZeroNeverGetsAReservedPort(t *testing.T) {
	first, last := ephemeral()
	if lo, hi := span(); hi > first && lo <= last {
		t.Skipf("ephemeral ports %d-%d: too few ports outside them, reserved ones are drawn from among them", first, last)
	}
	held := map[int]bool{}
	for range 50 {
		held[Get(t)] = true
	}
	for range 500 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		defer l.Close()
		if held[p] {
			t.Fatalf("listener on port 0 got reserved port %d", p)
		}
	}
	lo, hi := span()
	for p := range held {
		if p < lo || p >= hi {
			t.Errorf("port %d outside [%d, %d)", p, lo, hi)
		}
	}
}

// Every ip_local_port_range a machine may have gives a range to draw from:
// outside the ephemeral ports when enough are left there, and never an
// empty or inverted one (rand.IntN panics on it, failing every test that
// reserves a port, as on a host tuned to "1024 65535").
func TestSpanOfEveryEphemeralRange(t *testing.T) {
	for _, tc := range []struct {
		first, last int
		outside     bool // the range drawn from avoids [first, last]
	}{
		{32768, 60999, true}, // Linux's default
		{49152, 65535, true}, // IANA's (macOS, Windows)
		{10000, 65535, true}, // FreeBSD's
		{15000, 40000, true},
		{1024, 65535, false}, // every unprivileged port is ephemeral
		{1025, 65535, false},
		{1, 65535, false},
		{21000, 64000, false},
	} {
		lo, hi := spanOf(tc.first, tc.last)
		if lo < 1024 || hi > 65536 || hi-lo < 1000 {
			t.Errorf("ip_local_port_range %d %d: ports drawn from [%d, %d); want at least 1000 unprivileged ports", tc.first, tc.last, lo, hi)
			continue
		}
		if tc.outside && hi > tc.first && lo <= tc.last {
			t.Errorf("ip_local_port_range %d %d: ports drawn from [%d, %d), which overlaps it", tc.first, tc.last, lo, hi)
		}
	}
}
