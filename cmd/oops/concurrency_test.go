//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// TestLocking runs the real oops binary (this test binary re-executed as
// oops) several times at once against Classic ELBs in one moto.
func TestLocking(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	m := elbtest.Start(t)
	t.Run("ConcurrentRollbacks", func(t *testing.T) { t.Parallel(); testConcurrentRollbacks(t, m) })
	t.Run("StalledHolderTakenOverAfterTTL", func(t *testing.T) { t.Parallel(); testStalledHolder(t, m) })
}

// testConcurrentRollbacks runs 10 rollbacks at once against one ELB: half
// fail fast on the lock, half wait for it. Every command that says it
// succeeded switched exactly once, no other did, the final color matches
// the parity of the successes, and each command left exactly one event.
func testConcurrentRollbacks(t *testing.T, m *elbtest.Moto) {
	r := newAWSRig(t, m, "100000000901")
	ctx, p, work, env := r.ctx, r.p, r.work, r.env
	// Tag values only: no traffic goes to these ports.
	blue, green := "8081", "8082"
	if _, err := elbtest.Create(ctx, r.cfg(), elbtest.Fixture{
		Name: "race", Blue: blue, Green: green, Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	r.oopsrc(`{"elb-name": "race", "application-name": "app", "store": "rel"}`)

	const n = 10
	codes := make([]int, n)
	outs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			args := []string{"rollback", "--yes", "--verify-timeout", "0", "-m", fmt.Sprintf("run %d", i)}
			if i%2 == 0 {
				args = append(args, "--lock-wait", "2m")
			}
			cmd := exec.CommandContext(ctx, "oops", args...)
			cmd.Dir, cmd.Env = work, env
			out, err := cmd.CombinedOutput()
			outs[i] = string(out)
			var ee *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee):
				codes[i] = ee.ExitCode()
			default:
				t.Errorf("run %d: %v", i, err)
			}
		})
	}
	wg.Wait()

	ok := 0
	for i, code := range codes {
		switch code {
		case 0:
			ok++
		case 5: // locked: refused without touching the ELB
			if i%2 == 0 {
				t.Errorf("run %d waited for the lock but still failed on it:\n%s", i, outs[i])
			}
			if !strings.Contains(outs[i], "app is locked by tester (tester@") {
				t.Errorf("run %d: a locked refusal must say who holds the lock:\n%s", i, outs[i])
			}
		default:
			t.Errorf("run %d exited %d:\n%s", i, code, outs[i])
		}
	}
	if ok < n/2 {
		t.Errorf("%d commands succeeded, want at least the %d that waited", ok, n/2)
	}
	// One CreateLoadBalancerListeners per switch.
	if switches := p.Count("CreateLoadBalancerListeners"); switches != ok {
		t.Errorf("%d switches on the ELB, but %d commands reported success", switches, ok)
	}
	snap, err := elbtest.Read(ctx, r.cfg(), "race")
	if err != nil {
		t.Fatal(err)
	}
	want := blue
	if ok%2 == 1 {
		want = green
	}
	to := regexp.MustCompile(`->[A-Z]+:` + want + `( |$)`)
	for _, l := range snap.Listeners {
		if !to.MatchString(l) {
			t.Errorf("after %d successful rollbacks from blue, listener %s does not point at port %s", ok, l, want)
		}
	}

	events, err := store.ListEvents(context.Background(), dir.New(filepath.Join(work, "rel")), "app", store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	perRun := map[string]int{}
	results := map[string]int{}
	for _, ev := range events {
		if ev.Action != release.ActionRollback {
			t.Errorf("unexpected event %+v", ev)
		}
		perRun[ev.Reason]++
		results[ev.Result]++
	}
	for i := range n {
		if c := perRun[fmt.Sprintf("run %d", i)]; c != 1 {
			t.Errorf("run %d left %d events, want 1", i, c)
		}
	}
	if results[release.ResultOK] != ok || results[release.ResultRefused] != n-ok {
		t.Errorf("events say %v, want %d ok and %d refused", results, ok, n-ok)
	}
	t.Logf("%d of %d concurrent rollbacks succeeded (%d waited); final port %s", ok, n, n/2, want)
}

// testStalledHolder: a holder that stops heartbeating (SIGSTOP: its
// process still exists, so only the TTL can free the lock) blocks others
// until lock-ttl has passed since its last heartbeat, then the next
// command takes the lock over and says so.
func testStalledHolder(t *testing.T, m *elbtest.Moto) {
	r := newAWSRig(t, m, "100000000902")
	ctx, p, work, env, oops := r.ctx, r.p, r.work, r.env, r.oops
	if _, err := elbtest.Create(ctx, r.cfg(), elbtest.Fixture{
		Name: "stall", Blue: "8081", Green: "8082", Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	const ttl = 3 * time.Second
	r.oopsrc(`{"elb-name": "stall", "application-name": "app", "store": "rel", "lock-ttl": "3s"}`)

	hit := make(chan string, 1)
	p.Add(faultproxy.Rule{Action: "CreateLoadBalancerListeners", Times: 1, Delay: time.Hour, Hit: hit})
	holder := exec.Command("oops", "rollback", "--yes", "--verify-timeout", "0")
	holder.Dir, holder.Env = work, env
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	select {
	case <-hit:
	case <-ctx.Done():
		t.Fatal("the holder never reached the ELB")
	}
	if err := holder.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()

	if out, code := oops("lock", "status", "--json"); code != 0 || !strings.Contains(out, `"stale": false`) {
		t.Fatalf("lock status right after the stall (exit %d):\n%s", code, out)
	}
	out, code := oops("rollback", "--yes", "--verify-timeout", "0", "--lock-wait", "30s")
	waited := time.Since(stopped)
	if code != 0 {
		t.Fatalf("rollback after the TTL exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "taking over the lock of app from") || !strings.Contains(out, "longer than its lock-ttl of 3s") {
		t.Errorf("takeover not announced:\n%s", out)
	}
	// The holder's last heartbeat was at most ttl/4 before it stopped.
	if waited < ttl-ttl/4 {
		t.Errorf("lock taken over %s after the holder stalled, before its TTL (%s) could have passed", waited, ttl)
	}
	t.Logf("stalled holder's lock taken over %s after it stopped (lock-ttl %s)", waited.Round(10*time.Millisecond), ttl)
}
