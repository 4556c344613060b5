package workflow

import (
	"os/exec"
	"testing"
)

func TestShellQuoteRoundTrips(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, v := range []string{"green", "8002", "", "it's", "a b", "$(rm -rf /)", "`x`", "http://127.0.0.1:8002/healthcheck?x=1&y=2", "line\nbreak"} {
		e := &HookEnv{Commit: v}
		out, err := exec.Command(sh, "-c", e.Shell()+`printf %s "$OOPS_COMMIT"`).Output()
		if err != nil {
			t.Fatalf("eval of %q failed: %v\n%s", v, err, e.Shell())
		}
		if string(out) != v {
			t.Errorf("eval gave %q, want %q", out, v)
		}
	}
}
