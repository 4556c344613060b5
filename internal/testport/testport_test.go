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
