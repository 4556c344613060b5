//go:build unix

package local

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// published fills in what oops publish records: the artifact's size and
// SHA-256.
func (e *env) published(rel release.Release) release.Release {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.artifacts[rel.Commit]
	sum := sha256.Sum256(b)
	rel.Size, rel.SHA256 = int64(len(b)), hex.EncodeToString(sum[:])
	return rel
}

// An artifact whose bytes were replaced in the store after publish is
// refused before anything is unpacked or stopped, naming both hashes.
func TestLocalDeployVerifiesTheArtifact(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.published(e.release(hello(t, "good"), false))
	_, pidA, err := e.deploy(a, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	good := e.artifacts[a.Commit]
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0xff
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"same size, one byte flipped", flipped},
		{"truncated", good[:len(good)-1]},
		{"grown", append(append([]byte(nil), good...), 0)},
		{"another valid release", tarGz(t, []entry{{Name: "hello", Body: "#!/bin/sh\necho evil\n", Mode: 0o755}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.published(e.release(hello(t, "good"), false))
			e.mu.Lock()
			e.artifacts[b.Commit] = tc.bytes
			e.mu.Unlock()
			_, _, err := e.deploy(b, 5*time.Second)
			if !errors.Is(err, target.ErrIntegrity) {
				t.Fatalf("deploy of a replaced artifact: %v, want ErrIntegrity", err)
			}
			if errors.Is(err, target.ErrDeployFailed) {
				t.Fatalf("an integrity failure is not a failed deployment: %v", err)
			}
			sum := sha256.Sum256(tc.bytes)
			for _, want := range []string{b.SHA256, b.Key} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %q: %v", want, err)
				}
			}
			if !strings.Contains(err.Error(), hex.EncodeToString(sum[:])) {
				t.Errorf("error does not name the hash of the bytes read: %v", err)
			}
			if !procAlive(pidA, "") {
				t.Fatal("a replaced artifact stopped the release already on the color")
			}
			left, _ := filepath.Glob(filepath.Join(e.dir, releaseDir, ".*"))
			if len(left) > 0 {
				t.Fatalf("left behind: %v", left)
			}
			if _, err := os.Stat(filepath.Join(e.dir, releaseDir, b.Commit+"-green")); !os.IsNotExist(err) {
				t.Fatalf("the replaced artifact was unpacked: %v", err)
			}
		})
	}
}
