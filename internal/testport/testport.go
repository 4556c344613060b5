// Package testport hands tests loopback ports that a test writes into a
// configuration before anything listens on them (a color's port, a proxy's
// address, moto's).
//
// Listening on port 0 and closing is not enough: the kernel gives the port
// it just freed to the next listener on port 0 or to an outgoing connection,
// in this process or another test binary running beside it, and the test's
// own program later finds its port taken ("address already in use"). So the
// ports come from below the kernel's ephemeral range, which port 0 and
// outgoing connections never use, and a lock file per port keeps every other
// caller of the same user, in this process or another, from reserving the
// same one while it is held.
package testport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tries bounds the search; a run holds at most a few hundred ports at once.
const tries = 2000

// Reserve returns a free loopback TCP port and the function that gives it
// back. Until then no other Reserve, in any process, returns it.
func Reserve() (int, func(), error) {
	lo, hi := span()
	if err := os.MkdirAll(filepath.Dir(lockPath(0)), 0o777); err != nil {
		return 0, nil, fmt.Errorf("reserve port: %w", err)
	}
	for range tries {
		p := lo + rand.IntN(hi-lo)
		unlock, ok := lock(lockPath(p))
		if !ok {
			continue // another test holds it
		}
		// Something outside the tests may listen there.
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			unlock()
			continue
		}
		l.Close()
		return p, unlock, nil
	}
	return 0, nil, errors.New("reserve port: no free loopback port between " + strconv.Itoa(lo) + " and " + strconv.Itoa(hi))
}

// lockPath is the file whose lock holds port p, shared by every test binary
// of this user. Another user's folder and files (a run under sudo, a
// container as root sharing /tmp) are not this user's to create files in
// or open: shared, they left every port looking taken.
func lockPath(p int) string {
	dir := "oops-testport"
	if uid := os.Getuid(); uid >= 0 {
		dir += "-" + strconv.Itoa(uid)
	}
	return filepath.Join(os.TempDir(), dir, strconv.Itoa(p))
}

// Get reserves a port for the rest of the test.
func Get(tb testing.TB) int {
	tb.Helper()
	p, release, err := Reserve()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(release)
	return p
}

// span is the range ports are drawn from, for this machine's ephemeral
// range.
func span() (lo, hi int) {
	return spanOf(ephemeral())
}

// ephemeral is the kernel's ephemeral port range, [first, last].
func ephemeral() (first, last int) {
	first, last = 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			z, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && a <= z {
				first, last = a, z
			}
		}
	}
	return first, last
}

// spanOf is the range ports are drawn from when the kernel's ephemeral
// ports are [first, last]: [20000, first), or above the ephemeral range
// when a machine's starts low.
func spanOf(first, last int) (lo, hi int) {
	const low = 20000
	if first-low >= 2000 {
		return low, first
	}
	if 65535-last >= 2000 {
		return last + 1, 65536
	}
	if first-1024 >= 2000 {
		return 1024, first // a machine that gave nearly every port to the kernel
	}
	// It gave the kernel every port but a few ("1024 65535" is a common
	// tuning): draw from all of them. The locks still keep tests apart;
	// only a listener on port 0 may take a reserved port again.
	return 1024, 65536
}
