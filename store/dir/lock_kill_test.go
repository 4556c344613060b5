//go:build unix

package dir_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// TestKilledHolderTakenOverAfterTTL: a process holding the lock is killed
// with SIGKILL (no chance to release). Its lock blocks everyone while its
// last heartbeat is younger than its TTL, and is taken over, exactly once,
// after that.
func TestKilledHolderTakenOverAfterTTL(t *testing.T) {
	if os.Getenv("OOPS_LOCK_HOLDER") != "" {
		t.Skip("helper process")
	}
	root := t.TempDir()
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	holder.Env = append(os.Environ(), "OOPS_LOCK_HOLDER="+root)
	holder.Stderr = os.Stderr
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "holding") {
		_ = holder.Process.Kill()
		t.Fatalf("holder did not take the lock: %q, %v", line, err)
	}
	// Let it heartbeat a few times, so the takeover is measured from a
	// heartbeat, not from the start.
	time.Sleep(helperTTL)
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait()
	killed := time.Now()

	ctx := context.Background()
	s := dir.New(root)
	_, err = store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{TTL: helperTTL})
	var le *store.LockedError
	if !errors.As(err, &le) || le.Info.Holder != "killed-holder" {
		t.Fatalf("right after the kill: %v, want the killed holder's lock still in force", err)
	}
	var prev store.LockInfo
	var why string
	l, err := store.AcquireLock(ctx, s, store.LockInfo{App: "app", Holder: "bob"}, store.LockOptions{
		TTL: helperTTL, Wait: 10 * helperTTL,
		OnTakeover: func(p store.LockInfo, w string) { prev, why = p, w },
	})
	if err != nil {
		t.Fatalf("after the TTL: %v", err)
	}
	defer l.Release(ctx)
	waited := time.Since(killed)
	if prev.Holder != "killed-holder" || !strings.Contains(why, "longer than its lock-ttl") {
		t.Errorf("takeover from %q because %q", prev.Holder, why)
	}
	// Its last heartbeat came at most a quarter TTL before the kill.
	if waited < helperTTL*3/4 {
		t.Errorf("taken over %s after the kill, before the TTL of %s could have passed", waited, helperTTL)
	}
	if cur, _, err := store.ReadLock(ctx, s, "app"); err != nil || cur.Holder != "bob" {
		t.Errorf("lock after takeover: %+v, %v", cur, err)
	}
}

const helperTTL = time.Second

// TestHelperHoldLock takes the lock, says so, and holds it until killed.
func TestHelperHoldLock(t *testing.T) {
	root := os.Getenv("OOPS_LOCK_HOLDER")
	if root == "" {
		t.Skip("only run as a helper process")
	}
	_, err := store.AcquireLock(context.Background(), dir.New(root),
		store.LockInfo{App: "app", Holder: "killed-holder", Host: "elsewhere", PID: os.Getpid(), Command: "oops deploy"},
		store.LockOptions{TTL: helperTTL})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("holding\n")
	select {}
}
