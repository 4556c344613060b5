//go:build unix

package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A state directory or file others can write lets them choose the command
// the proxy runs (as its user) when it restarts a color: refused, with the
// fix.
func TestCheckStateDirRefusesWhatOthersCanWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantFix string // "" means accepted
	}{
		{name: "missing directory", setup: func(t *testing.T, dir string) { must(t, os.Remove(dir)) }},
		{name: "private directory and files", setup: func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "blue.json"), []byte("{}"), 0o600))
			must(t, os.WriteFile(filepath.Join(dir, "live.json"), []byte("{}"), 0o644))
			must(t, os.MkdirAll(filepath.Join(dir, "releases", "abc-blue"), 0o755))
		}},
		{name: "world-writable directory", setup: func(t *testing.T, dir string) { must(t, os.Chmod(dir, 0o777)) }, wantFix: "chmod 700 {dir}"},
		{name: "group-writable directory", setup: func(t *testing.T, dir string) { must(t, os.Chmod(dir, 0o770)) }, wantFix: "chmod 700 {dir}"},
		{name: "world-writable color file", setup: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "green.json")
			must(t, os.WriteFile(p, []byte("{}"), 0o600))
			must(t, os.Chmod(p, 0o666))
		}, wantFix: "chmod 600 {dir}/green.json"},
		{name: "group-writable release directory", setup: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "releases", "abc-blue")
			must(t, os.MkdirAll(p, 0o700))
			must(t, os.Chmod(p, 0o775))
		}, wantFix: "chmod 700 {dir}/releases/abc-blue"},
		{name: "file owned by another user", setup: func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file to another user")
			}
			p := filepath.Join(dir, "blue.json")
			must(t, os.WriteFile(p, []byte("{}"), 0o600))
			must(t, os.Chown(p, 65534, 65534))
		}, wantFix: "{dir}/blue.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "local")
			must(t, os.Mkdir(dir, 0o700))
			tc.setup(t, dir)
			err := CheckStateDir(dir)
			if tc.wantFix == "" {
				if err != nil {
					t.Fatalf("CheckStateDir = %v, want nil", err)
				}
				return
			}
			var pe *UnsafeStateError
			if !errors.As(err, &pe) {
				t.Fatalf("CheckStateDir = %v, want an UnsafeStateError", err)
			}
			want := strings.ReplaceAll(tc.wantFix, "{dir}", dir)
			if !strings.Contains(pe.Fix, want) {
				t.Errorf("fix %q does not contain %q (error: %v)", pe.Fix, want, err)
			}
		})
	}
}

// oops proxy refuses to start (and so to restart any color) on a state
// directory others can write.
func TestNewProxyRefusesUnsafeStateDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "local")
	must(t, os.Mkdir(dir, 0o700))
	must(t, os.Chmod(dir, 0o777))
	p, err := NewProxy(ProxyOptions{StateDir: dir, BluePort: 1, GreenPort: 2})
	if err == nil {
		p.Close()
		t.Fatal("NewProxy accepted a world-writable state directory")
	}
	var pe *UnsafeStateError
	if !errors.As(err, &pe) {
		t.Fatalf("NewProxy = %v, want an UnsafeStateError", err)
	}
}

// A state directory oops creates is private to its user.
func TestEnsureDirIsPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "local")
	must(t, ensureDir(dir))
	fi, err := os.Stat(dir)
	must(t, err)
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("state directory created %v, want 0700", fi.Mode().Perm())
	}
	must(t, CheckStateDir(dir))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
