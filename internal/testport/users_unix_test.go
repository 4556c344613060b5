//go:build unix

package testport

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// A user whose tests run after another user's (a run under sudo, in a
// container as root sharing /tmp, a second CI account) still gets ports:
// the lock files the other user left are not theirs to open, nor is the
// folder they are in theirs to create files in.
func TestReserveAfterAnotherUser(t *testing.T) {
	if os.Getenv("TESTPORT_CHILD") == "reserve" {
		if _, release, err := Reserve(); err != nil {
			t.Fatal(err)
		} else {
			release()
		}
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a child as another user")
	}
	tmp, err := os.MkdirTemp("", "testport-users")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	// Root's run: its lock folder, and a lock file for every port.
	t.Setenv("TMPDIR", tmp)
	lo, hi := span()
	if err := os.MkdirAll(filepath.Dir(lockPath(lo)), 0o777); err != nil {
		t.Fatal(err)
	}
	for p := lo; p < hi; p++ {
		f, err := os.Create(lockPath(p))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	// This test binary, run as nobody (it cannot reach go test's folder).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "testport.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.run=^TestReserveAfterAnotherUser$", "-test.v")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "TESTPORT_CHILD=reserve", "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Reserve as another user after root's run: %v\n%s", err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
