package elb

import (
	"strings"
	"testing"
)

// FuzzDecodeRecord feeds oops:listeners tag values, hostile included (the
// tag is writable by anyone who can tag the ELB, and a rollback re-creates
// listeners from it), to decodeRecord: it never panics, and what it
// accepts is listeners an ELB can have (ports 1-65535, each once, a known
// protocol on both sides) that encode and decode back unchanged.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		"L80:HTTP:HTTP",
		"L80:HTTP:HTTP L443:HTTPS:HTTP Carn:aws:acm:us-east-1:123456789012:certificate/0c1b-4f PAWSConsole-SSLNegotiationPolicy-web-1 PELBSecurityPolicy-2016-08",
		"L8443:SSL:TCP Carn:aws:iam::123456789012:server-certificate/x",
		"", " ", "L", "C", "P", "X80", "LL", "L:::", "L80::", "L80:HTTP:", "L80:HTTP:HTTP:HTTP",
		"Lx:HTTP:HTTP", "L0:HTTP:HTTP", "L-80:HTTP:HTTP", "L+80:HTTP:HTTP", "L65536:HTTP:HTTP",
		"L99999999999:HTTP:HTTP", "L2147483648:HTTP:HTTP", "L0x50:HTTP:HTTP",
		"L80:HTTP:HTTP L80:TCP:TCP",     // the same port twice
		"L80:FTP:HTTP", "L80:http:http", // protocols ELB does not have, or lower case
		"Cfoo L80:HTTP:HTTP", "Pfoo", // details before any listener
		"L80:HTTP:HTTP C C", "L80:HTTP:HTTP Ca Cb", // a second certificate
		"L80:HTTP:HTTP\tL443:HTTPS:HTTPS\nCarn", // other whitespace
		"L80:HTTP:HTTP P" + strings.Repeat("p", 300),
		"L80:HTTP:HTTP \xff\xfe", "L80:HTTP:HTTP C\u00e9", "L\u0660:HTTP:HTTP",
		strings.Repeat("L80:HTTP:HTTP ", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		defs, err := decodeRecord(s)
		if err != nil {
			return
		}
		seen := map[int32]bool{}
		for _, l := range defs {
			if l.Port < 1 || l.Port > 65535 || seen[l.Port] {
				t.Fatalf("decodeRecord(%.80q) accepted port %d (%d listeners)", s, l.Port, len(defs))
			}
			seen[l.Port] = true
			if !knownProtocol(l.Protocol) || !knownProtocol(l.InstanceProtocol) {
				t.Fatalf("decodeRecord(%.80q) accepted protocols %q -> %q", s, l.Protocol, l.InstanceProtocol)
			}
		}
		chunks, err := encodeRecord(defs)
		if err != nil {
			return // details a tag cannot hold: never written by oops
		}
		again, err := decodeRecord(strings.Join(chunks, " "))
		if err != nil || !sameDefs(again, defs) {
			t.Fatalf("round trip of %.80q: %.200v, %v; want %.200v", s, again, err, defs)
		}
	})
}
