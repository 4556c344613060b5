package proxybench

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// A port a benchmark names before its program listens on it (the proxy's,
// a color's, nginx's) is outside the kernel's ephemeral range: the load
// generator's thousands of connections, or a listener on port 0, cannot
// take it meanwhile ("address already in use").
func TestFreePortIsNotEphemeral(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skip("no ip_local_port_range:", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Skipf("ip_local_port_range %q", b)
	}
	first, err1 := strconv.Atoi(f[0])
	last, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || first-20000 < 2000 && 65535-last < 2000 && first-1024 < 2000 {
		t.Skipf("ip_local_port_range %q leaves too few ports outside it", b)
	}
	for range 20 {
		if p := freePort(t); p >= first && p <= last {
			t.Fatalf("freePort = %d, in the ephemeral range %d-%d", p, first, last)
		}
	}
}
