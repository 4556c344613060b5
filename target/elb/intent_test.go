package elb

import (
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
)

// The oops:switch tag names who switched; a Windows user (DOMAIN\alice) or
// a very long host name must not make AWS refuse the tag, the first call
// of the switch.
func TestIntentTagValueIsAValidTagValue(t *testing.T) {
	for _, by := range []string{`CORP\alice@build-7`, "bob@" + strings.Repeat("h", 300), "carol (ops)@host"} {
		v := (&intentTag{to: release.Green, started: time.Unix(0, 0), by: by}).value()
		if r, bad := badTagRune(v); bad {
			t.Errorf("value %q has %q, which ELB tags reject", v, r)
		}
		if len(v) > maxTagValue {
			t.Errorf("value of %d characters, limit %d", len(v), maxTagValue)
		}
		if it := parseIntent(v); it == nil || it.to != release.Green {
			t.Errorf("value %q does not read back", v)
		}
	}
}
