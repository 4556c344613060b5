//go:build unix

package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/target"
)

// TestDeployPassesTheCommandsEnvToTheApp: the lock token of the command
// that deploys reaches the processes it starts through the context (an
// oops they run shares the lock), and not through this process's
// environment, where every goroutine would see it.
func TestDeployPassesTheCommandsEnvToTheApp(t *testing.T) {
	e := newEnv(t)
	seen := filepath.Join(t.TempDir(), "token")
	bin := hello(t, "good")[0].Body
	rel := e.release([]entry{
		{Name: "hello", Body: "#!/bin/sh\nprintf %s \"$OOPS_LOCK_TOKEN\" > " + seen + "\nexec ./hello.bin \"$@\"\n", Mode: 0o755},
		{Name: "hello.bin", Body: bin, Mode: 0o755},
	}, false)
	ctx := target.WithChildEnv(context.Background(), "OOPS_LOCK_TOKEN=tok-42")
	st, err := e.tgt.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tgt.Deploy(ctx, target.DeployRequest{Release: rel, Color: st.Off.Color, Timeout: 30 * time.Second,
		Progress: func(string, ...any) {}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(seen)
	if err != nil {
		t.Fatalf("the app did not start: %v", err)
	}
	if strings.TrimSpace(string(got)) != "tok-42" {
		t.Errorf("the app saw OOPS_LOCK_TOKEN=%q, want the command's tok-42", got)
	}
	if v := os.Getenv("OOPS_LOCK_TOKEN"); v != "" {
		t.Errorf("the token leaked into this process's environment: %q", v)
	}
}

func TestWithChildEnvAppends(t *testing.T) {
	ctx := target.WithChildEnv(context.Background(), "A=1")
	inner := target.WithChildEnv(ctx, "B=2")
	if got := strings.Join(target.ChildEnv(inner), " "); got != "A=1 B=2" {
		t.Errorf("ChildEnv = %q, want A=1 B=2", got)
	}
	if got := strings.Join(target.ChildEnv(ctx), " "); got != "A=1" {
		t.Errorf("the outer context changed: %q", got)
	}
}
