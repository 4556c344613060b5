package cmd

import (
	"strings"
	"testing"
)

// TestRollbackSaysTheConfigErrorFirst pins the order of rollback's checks:
// a .oopsrc that does not load is what the operator hears, before a bad
// --verify-timeout (as before 734d406).
func TestRollbackSaysTheConfigErrorFirst(t *testing.T) {
	t.Parallel()
	f, _, errOut := testFactory(t, `{"application-name": "api", "store": "rel", "bogus": 1}`)
	code := Main(f, []string{"rollback", "--yes", "--verify-timeout", "-1s"})
	if code != ExitUsage {
		t.Errorf("exit %d, want %d", code, ExitUsage)
	}
	if got := errOut.String(); !strings.Contains(got, "bogus") || strings.Contains(got, "--verify-timeout") {
		t.Errorf("stderr:\n%s\nwant the .oopsrc error (unknown key bogus), not the --verify-timeout one", got)
	}
}
