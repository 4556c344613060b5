package dns_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/dns"
)

func TestCommandDeployer(t *testing.T) {
	artifact := []byte("release bytes")
	sum := sha256.Sum256(artifact)
	rel := release.Release{Commit: shaA, Key: "api/api-" + shaA + ".zip", Size: int64(len(artifact)), SHA256: hex.EncodeToString(sum[:])}
	for _, tc := range []struct {
		name    string
		script  string
		stored  []byte
		is      error
		lines   []string // progress lines wanted
		ran     bool
		errText string
	}{
		{name: "installs", script: `echo "$OOPS_COLOR $OOPS_COMMIT $OOPS_RELEASE_KEY $LOCK"; cat "$OOPS_RELEASE_FILE"; echo; touch ran`,
			stored: artifact, ran: true,
			lines: []string{"deploy-command: green " + shaA + " api/api-" + shaA + ".zip token-1", "deploy-command: release bytes"}},
		{name: "fails", script: `echo step one; echo cannot reach the stack >&2; touch ran; exit 3`,
			stored: artifact, ran: true, is: target.ErrDeployFailed, errText: "exit status 3; its last lines: step one | cannot reach the stack"},
		{name: "changed in the store", script: `touch ran`, stored: []byte("other bytes!!"), is: target.ErrIntegrity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var mu sync.Mutex
			var lines []string
			d := &dns.CommandDeployer{
				Command: []string{"sh", "-c", tc.script}, Dir: dir,
				Open: func(context.Context, release.Release) (io.ReadCloser, error) {
					return io.NopCloser(strings.NewReader(string(tc.stored))), nil
				},
			}
			ctx := target.WithChildEnv(context.Background(), "LOCK=token-1")
			_, err := d.Deploy(ctx, target.DeployRequest{Release: rel, Color: release.Green, Progress: func(f string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, fmt.Sprintf(f, a...))
			}})
			if tc.is == nil && err != nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if err != nil && !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("err = %v, want %q", err, tc.errText)
			}
			got := strings.Join(lines, "\n")
			for _, l := range tc.lines {
				if !strings.Contains(got, l) {
					t.Errorf("progress lacks %q:\n%s", l, got)
				}
			}
			if _, serr := os.Stat(filepath.Join(dir, "ran")); (serr == nil) != tc.ran {
				t.Errorf("the command ran: %v, want %v", serr == nil, tc.ran)
			}
		})
	}
}

func TestCommandDeployerFenced(t *testing.T) {
	dir := t.TempDir()
	d := &dns.CommandDeployer{Command: []string{"touch", "ran"}, Dir: dir,
		Open: func(context.Context, release.Release) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("x")), nil
		}}
	ctx := target.WithFence(context.Background(), lost{})
	if _, err := d.Deploy(ctx, target.DeployRequest{Release: release.Release{Commit: shaA, Key: "k.zip"}, Color: release.Blue}); err == nil {
		t.Fatal("deployed without the lock")
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran without the lock")
	}
}
