//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// TestLocking runs the real oops binary (this test binary re-executed as
// oops) several times at once against Classic ELBs in one moto.
func TestLocking(t *testing.T) {
	m := elbtest.Start(t)
	t.Run("ConcurrentRollbacks", func(t *testing.T) { t.Parallel(); testConcurrentRollbacks(t, m) })
	t.Run("StalledHolderTakenOverAfterTTL", func(t *testing.T) { t.Parallel(); testStalledHolder(t, m) })
	t.Run("StalledHolderFencedOnELB", func(t *testing.T) { t.Parallel(); testFencedELBHolder(t, m) })
	t.Run("StalledALBHolder", func(t *testing.T) { t.Parallel(); testFencedALB(t, m) })
	for i, action := range []string{"AddTags", "ConfigureHealthCheck", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners"} {
		t.Run("StalledAt"+action, func(t *testing.T) {
			t.Parallel()
			testFencedELBStep(t, m, action, fmt.Sprintf("1000000009%02d", 10+i))
		})
	}
}

// testFencedELBStep stops A's rollback while its call of action is in
// flight (held by the fault proxy, so it lands late, after B's switch, as
// a call sent just before a stall would). That one call is the window AWS
// leaves (it cannot check a fencing token); A sends nothing after it, exits
// 5, and whatever the late call did, oops status says it and oops repair
// leaves every listener on one color.
func testFencedELBStep(t *testing.T, m *elbtest.Moto, action, account string) {
	acct := accountProxy(m.URL, account)
	defer acct.Close()
	p := faultproxy.New(acct.URL)
	defer p.Close()
	ctx := awstest.Ctx(t)
	name := "step" + account[len(account)-2:]
	if _, err := elbtest.Create(ctx, awstest.Config(acct.URL), elbtest.Fixture{
		Name: name, Blue: "8081", Green: "8082", Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, ".oopsrc"), []byte(`{"elb-name": "`+name+`", "application-name": "app", "store": "rel", "lock-ttl": "2s"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), awstest.Env(p.URL)...)
	env = append(env, "USER=tester", "HOME="+work)
	oops := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, "oops", args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	hit := make(chan string, 1)
	p.Add(faultproxy.Rule{Action: action, Times: 1, Delay: 4 * time.Second, Late: true, Hit: hit})
	var aOut strings.Builder
	a := exec.Command("oops", "rollback", "--yes", "--verify-timeout", "0", "-m", "A")
	a.Dir, a.Env, a.Stdout, a.Stderr = work, env, &aOut, &aOut
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Process.Kill() }()
	select {
	case <-hit:
	case <-ctx.Done():
		t.Fatalf("A never called %s", action)
	}
	lands := time.Now().Add(4 * time.Second)
	if err := a.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	before := p.Count(action)
	if out, code := oops("rollback", "--yes", "--verify-timeout", "0", "--lock-wait", "30s", "--force", "-m", "B"); code != 0 {
		t.Fatalf("B's rollback: exit %d\n%s", code, out)
	}
	calls := func() map[string]int {
		c := map[string]int{}
		for _, act := range []string{"AddTags", "RemoveTags", "ConfigureHealthCheck", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners", "SetLoadBalancerPoliciesOfListener"} {
			c[act] = p.Count(act)
		}
		return c
	}
	afterB := calls()
	if err := a.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err := a.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || !strings.Contains(aOut.String(), "lost the lock") {
		t.Errorf("A resumed: %v, want exit 5 and \"lost the lock\":\n%s", err, aOut.String())
	}
	// Nothing of A's but the one late call reached the ELB after B.
	for act, n := range calls() {
		if n != afterB[act] {
			t.Errorf("A called %s %d more time(s) after it lost the lock\n%s", act, n-afterB[act], aOut.String())
		}
	}
	if before < 1 {
		t.Errorf("the held %s was not counted", action)
	}
	time.Sleep(time.Until(lands) + 500*time.Millisecond) // A's late call has landed
	out, code := oops("status")
	t.Logf("status after A's late %s (exit %d):\n%s", action, code, out)
	if code != 0 {
		if code != 8 {
			t.Fatalf("status after A's late %s: exit %d, want 0 or 8 (inconsistent, with the fix)\n%s", action, code, out)
		}
		if out, code := oops("repair", "--yes"); code != 0 {
			t.Fatalf("repair after A's late %s: exit %d\n%s", action, code, out)
		}
	}
	snap, err := elbtest.Read(ctx, awstest.Config(acct.URL), name)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Listeners) != 2 {
		t.Fatalf("listeners in the end: %v, want both", snap.Listeners)
	}
	port := ""
	to := regexp.MustCompile(`->[A-Z]+:(\d+)`)
	for _, l := range snap.Listeners {
		m := to.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("listener %q: no instance port", l)
		}
		if port == "" {
			port = m[1]
		} else if m[1] != port {
			t.Errorf("listeners split between colors in the end: %v", snap.Listeners)
		}
	}
	t.Logf("A's output:\n%s", aOut.String())
}

// testFencedELBHolder: A's rollback is held at its first change (the
// health check) and stopped; B takes the stale lock and rolls back. A
// resumed must not delete B's listeners: the one call it had already sent
// is the window that remains (AWS cannot check a fencing token), and every
// later call is refused before it leaves (exit 5, "lost the lock").
func testFencedELBHolder(t *testing.T, m *elbtest.Moto) {
	acct := accountProxy(m.URL, "100000000903")
	defer acct.Close()
	p := faultproxy.New(acct.URL)
	defer p.Close()
	ctx := awstest.Ctx(t)
	if _, err := elbtest.Create(ctx, awstest.Config(acct.URL), elbtest.Fixture{
		Name: "fence", Blue: "8081", Green: "8082", Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	// The store is S3 too: the lock, the takeover and the events go
	// through the same fault proxy as the ELB calls.
	s3c := s3.NewFromConfig(awstest.Config(acct.URL), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fence-store")}); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, ".oopsrc"), []byte(`{"elb-name": "fence", "application-name": "app", "store": "s3://fence-store", "lock-ttl": "2s"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), awstest.Env(p.URL)...)
	env = append(env, "USER=tester", "HOME="+work)
	oops := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, "oops", args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}

	hit := make(chan string, 1)
	p.Add(faultproxy.Rule{Action: "ConfigureHealthCheck", Times: 1, Delay: 4 * time.Second, Hit: hit})
	var aOut strings.Builder
	a := exec.Command("oops", "rollback", "--yes", "--verify-timeout", "0", "-m", "A")
	a.Dir, a.Env, a.Stdout, a.Stderr = work, env, &aOut, &aOut
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Process.Kill() }()
	select {
	case <-hit:
	case <-ctx.Done():
		t.Fatal("A never reached the ELB")
	}
	if err := a.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// B: blue -> green, after waiting out A's lock-ttl.
	if out, code := oops("rollback", "--yes", "--verify-timeout", "0", "--lock-wait", "30s", "-m", "B"); code != 0 {
		t.Fatalf("B's rollback: exit %d\n%s", code, out)
	}
	if err := a.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err := a.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || !strings.Contains(aOut.String(), "lost the lock") {
		t.Errorf("A resumed: %v, want exit 5 and \"lost the lock\":\n%s", err, aOut.String())
	}
	if n := p.Count("DeleteLoadBalancerListeners"); n != 1 {
		t.Errorf("%d DeleteLoadBalancerListeners calls, want B's one only", n)
	}
	snap, err := elbtest.Read(ctx, awstest.Config(acct.URL), "fence")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Listeners) != 2 {
		t.Errorf("listeners after A resumed: %v, want B's two", snap.Listeners)
	}
	for _, l := range snap.Listeners {
		if !strings.Contains(l, ":8082") {
			t.Errorf("listener %s does not point at green (8082), where B switched", l)
		}
	}
	out, code := oops("status")
	t.Logf("status after A's one late call (exit %d):\n%s", code, out)
	// B's history entry stands, and A's says it failed.
	out, code = oops("history", "--json")
	if code != 0 {
		t.Fatalf("history: exit %d\n%s", code, out)
	}
	var evs []release.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatal(err)
	}
	results := map[string]string{}
	for _, ev := range evs {
		results[ev.Reason] = ev.Result
	}
	if results["B"] != release.ResultOK || results["A"] != release.ResultFailed {
		t.Errorf("history results %v, want B ok and A failed", results)
	}
}

// testConcurrentRollbacks runs 10 rollbacks at once against one ELB: half
// fail fast on the lock, half wait for it. Every command that says it
// succeeded switched exactly once, no other did, the final color matches
// the parity of the successes, and each command left exactly one event.
func testConcurrentRollbacks(t *testing.T, m *elbtest.Moto) {
	acct := accountProxy(m.URL, "100000000901")
	defer acct.Close()
	p := faultproxy.New(acct.URL)
	defer p.Close()
	ctx := awstest.Ctx(t)
	// Tag values only: no traffic goes to these ports.
	blue, green := "8081", "8082"
	if _, err := elbtest.Create(ctx, awstest.Config(acct.URL), elbtest.Fixture{
		Name: "race", Blue: blue, Green: green, Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, ".oopsrc"), []byte(`{"elb-name": "race", "application-name": "app", "store": "rel"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), awstest.Env(p.URL)...)
	env = append(env, "USER=tester", "HOME="+work)

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
	snap, err := elbtest.Read(ctx, awstest.Config(acct.URL), "race")
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
	acct := accountProxy(m.URL, "100000000902")
	defer acct.Close()
	p := faultproxy.New(acct.URL)
	defer p.Close()
	ctx := awstest.Ctx(t)
	if _, err := elbtest.Create(ctx, awstest.Config(acct.URL), elbtest.Fixture{
		Name: "stall", Blue: "8081", Green: "8082", Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	const ttl = 3 * time.Second
	if err := os.WriteFile(filepath.Join(work, ".oopsrc"), []byte(`{"elb-name": "stall", "application-name": "app", "store": "rel", "lock-ttl": "3s"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), awstest.Env(p.URL)...)
	env = append(env, "USER=tester", "HOME="+work)
	oops := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, "oops", args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}

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

// testFencedALB: A's rollback is stopped with its first ModifyListener in
// flight; B rolls back twice (to green and back to blue). A's call lands
// late, moving one listener to green: the window that remains. A sends
// nothing after it and exits 5; oops status reports the split listeners
// (exit 8) and oops repair puts them back on one color.
func testFencedALB(t *testing.T, m *elbtest.Moto) {
	acct := accountProxy(m.URL, "100000000904")
	defer acct.Close()
	p := faultproxy.New(acct.URL)
	defer p.Close()
	ctx := awstest.Ctx(t)
	lb, err := albtest.New(ctx, awstest.Config(acct.URL), albtest.Options{Name: "fencealb", Ports: []int{80, 443}})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	rc := fmt.Sprintf(`{"alb-name": %q, "application-name": "app", "store": "rel", "lock-ttl": "2s"}`, lb.Name)
	if err := os.WriteFile(filepath.Join(work, ".oopsrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), awstest.Env(p.URL)...)
	env = append(env, "USER=tester", "HOME="+work)
	oops := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, "oops", args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	hit := make(chan string, 1)
	p.Add(faultproxy.Rule{Action: "ModifyListener", Times: 1, Delay: 4 * time.Second, Late: true, Hit: hit})
	var aOut strings.Builder
	a := exec.Command("oops", "rollback", "--yes", "--force", "--verify-timeout", "0", "-m", "A")
	a.Dir, a.Env, a.Stdout, a.Stderr = work, env, &aOut, &aOut
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Process.Kill() }()
	select {
	case <-hit:
	case <-ctx.Done():
		t.Fatal("A never called ModifyListener")
	}
	lands := time.Now().Add(4 * time.Second)
	if err := a.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for _, why := range []string{"B1", "B2"} {
		if out, code := oops("rollback", "--yes", "--force", "--verify-timeout", "0", "--lock-wait", "30s", "-m", why); code != 0 {
			t.Fatalf("B's rollback %s: exit %d\n%s", why, code, out)
		}
	}
	afterB := p.Count("ModifyListener")
	if err := a.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err = a.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || !strings.Contains(aOut.String(), "lost the lock") {
		t.Errorf("A resumed: %v, want exit 5 and \"lost the lock\":\n%s", err, aOut.String())
	}
	if n := p.Count("ModifyListener"); n != afterB {
		t.Errorf("A called ModifyListener %d more time(s) after it lost the lock:\n%s", n-afterB, aOut.String())
	}
	time.Sleep(time.Until(lands) + 500*time.Millisecond) // A's late call has landed
	out, code := oops("status")
	t.Logf("status after A's late ModifyListener (exit %d):\n%s", code, out)
	if code != 8 {
		t.Errorf("status after a late ModifyListener split the listeners: exit %d, want 8\n%s", code, out)
	}
	if out, code := oops("repair", "--yes"); code != 0 {
		t.Fatalf("repair: exit %d\n%s", code, out)
	}
	if out, code := oops("status"); code != 0 {
		t.Errorf("status after repair: exit %d\n%s", code, out)
	}
}
