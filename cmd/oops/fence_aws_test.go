//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// TestFencingAWS stops a real oops that holds the lock while one of its
// changing calls is in flight, lets another operator take the stale lock
// over and act, then resumes it. The held call is forwarded late, after
// the other operator acted, as a call that left just before a stall would
// land: that one call is the window AWS leaves (it cannot check a fencing
// token). The resumed command sends nothing after it, exits 5 saying it
// lost the lock, and whatever the late call did, oops status says it and
// oops repair mends it.
func TestFencingAWS(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	m := elbtest.Start(t)
	t.Run("ELBWithS3Store", func(t *testing.T) { t.Parallel(); testFencedELBHolder(t, m) })
	t.Run("ALB", func(t *testing.T) { t.Parallel(); testFencedALB(t, m) })
	for i, action := range []string{"AddTags", "ConfigureHealthCheck", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners"} {
		t.Run("ELBStalledAt"+action, func(t *testing.T) {
			t.Parallel()
			testFencedELBStep(t, m, action, fmt.Sprintf("1000000009%02d", 10+i))
		})
	}
}

// awsRig is one AWS account in moto behind a fault proxy, and a work dir
// with an .oopsrc, for running the real oops.
type awsRig struct {
	t    *testing.T
	ctx  context.Context
	acct *httptest.Server
	p    *faultproxy.Proxy
	work string
	env  []string
}

func newAWSRig(t *testing.T, m *elbtest.Moto, account string) *awsRig {
	acct := accountProxy(m.URL, account)
	t.Cleanup(acct.Close)
	p := faultproxy.NewT(t, acct.URL)
	r := &awsRig{t: t, ctx: awstest.Ctx(t), acct: acct, p: p, work: t.TempDir()}
	r.env = append(append(os.Environ(), awstest.Env(p.URL)...), "USER=tester", "HOME="+r.work)
	return r
}

func (r *awsRig) cfg() aws.Config { return awstest.Config(r.acct.URL) }

func (r *awsRig) oopsrc(rc string) {
	if err := os.WriteFile(filepath.Join(r.work, ".oopsrc"), []byte(rc), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *awsRig) oops(args ...string) (string, int) {
	cmd := exec.CommandContext(r.ctx, "oops", args...)
	cmd.Dir, cmd.Env = r.work, r.env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		r.t.Fatal(err)
	}
	return string(out), 0
}

// heldHolder is A: an oops stopped while its call of an action is held.
type heldHolder struct {
	cmd *exec.Cmd
	out strings.Builder
	// lands is when the held call reaches moto.
	lands time.Time
}

// stallAt starts oops args and stops it (SIGSTOP) once its first call of
// action reaches the fault proxy, which forwards that call late (after
// delay) whatever becomes of its caller.
func (r *awsRig) stallAt(action string, delay time.Duration, args ...string) *heldHolder {
	hit := make(chan string, 1)
	r.p.Add(faultproxy.Rule{Action: action, Times: 1, Delay: delay, Late: true, Hit: hit})
	h := &heldHolder{cmd: exec.Command("oops", args...)}
	h.cmd.Dir, h.cmd.Env, h.cmd.Stdout, h.cmd.Stderr = r.work, r.env, &h.out, &h.out
	if err := h.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = h.cmd.Process.Kill() })
	select {
	case <-hit:
	case <-r.ctx.Done():
		r.t.Fatalf("oops %s never called %s", strings.Join(args, " "), action)
	}
	h.lands = time.Now().Add(delay)
	if err := h.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatal(err)
	}
	return h
}

// resume continues A and checks that it exits 5 saying it lost the lock.
func (h *heldHolder) resume(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err := h.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || !strings.Contains(h.out.String(), "lost the lock") {
		t.Errorf("A resumed: %v, want exit 5 and \"lost the lock\":\n%s", err, h.out.String())
	}
}

// landed waits until A's held call has reached moto.
func (h *heldHolder) landed() { time.Sleep(time.Until(h.lands) + 500*time.Millisecond) }

// calls counts the changing ELB and ALB calls made through the proxy.
func (r *awsRig) calls() map[string]int {
	c := map[string]int{}
	for _, act := range []string{"AddTags", "RemoveTags", "ConfigureHealthCheck", "DeleteLoadBalancerListeners",
		"CreateLoadBalancerListeners", "SetLoadBalancerPoliciesOfListener", "SetLoadBalancerPoliciesForBackendServer", "ModifyListener", "ModifyRule"} {
		c[act] = r.p.Count(act)
	}
	return c
}

// noCallsSince fails for every changing call made after before was taken.
func (r *awsRig) noCallsSince(before map[string]int, who string) {
	r.t.Helper()
	for act, n := range r.calls() {
		if n != before[act] {
			r.t.Errorf("%s called %s %d more time(s) after it lost the lock", who, act, n-before[act])
		}
	}
}

// mended checks that oops status is fine, or says what is wrong (exit 8)
// and oops repair fixes it.
func (r *awsRig) mended(after string) {
	r.t.Helper()
	out, code := r.oops("status")
	r.t.Logf("status after %s (exit %d):\n%s", after, code, out)
	if code == 0 {
		return
	}
	if code != 8 {
		r.t.Fatalf("status after %s: exit %d, want 0 or 8 (inconsistent, with the fix)\n%s", after, code, out)
	}
	if out, code := r.oops("repair", "--yes"); code != 0 {
		r.t.Fatalf("repair after %s: exit %d\n%s", after, code, out)
	}
	if out, code := r.oops("status"); code != 0 {
		r.t.Errorf("status after repair: exit %d\n%s", code, out)
	}
}

// testFencedELBHolder: A's rollback is held at its health-check change and
// stopped; B takes the stale lock and rolls back. The store is S3 too, so
// the lock, the takeover and the events go through the same fault proxy.
// A must not report B's switch as its own, and history keeps B's ok.
func testFencedELBHolder(t *testing.T, m *elbtest.Moto) {
	r := newAWSRig(t, m, "100000000903")
	if _, err := elbtest.Create(r.ctx, r.cfg(), elbtest.Fixture{
		Name: "fence", Blue: "8081", Green: "8082", Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(r.cfg(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(r.ctx, &s3.CreateBucketInput{Bucket: aws.String("fence-store")}); err != nil {
		t.Fatal(err)
	}
	r.oopsrc(`{"elb-name": "fence", "application-name": "app", "store": "s3://fence-store", "lock-ttl": "2s"}`)

	a := r.stallAt("ConfigureHealthCheck", 4*time.Second, "rollback", "--yes", "--verify-timeout", "0", "-m", "A")
	if out, code := r.oops("rollback", "--yes", "--verify-timeout", "0", "--lock-wait", "30s", "-m", "B"); code != 0 {
		t.Fatalf("B's rollback: exit %d\n%s", code, out)
	}
	afterB := r.calls()
	a.resume(t)
	r.noCallsSince(afterB, "A")
	if n := r.p.Count("DeleteLoadBalancerListeners"); n != 1 {
		t.Errorf("%d DeleteLoadBalancerListeners calls, want B's one only", n)
	}
	a.landed()
	r.mended("A's late ConfigureHealthCheck")

	out, code := r.oops("history", "--json")
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

// testFencedELBStep holds A's rollback at its call of action, for each
// changing call of a Classic ELB switch.
func testFencedELBStep(t *testing.T, m *elbtest.Moto, action, account string) {
	r := newAWSRig(t, m, account)
	name := "step" + account[len(account)-2:]
	if _, err := elbtest.Create(r.ctx, r.cfg(), elbtest.Fixture{
		Name: name, Blue: "8081", Green: "8082", Live: release.Blue, Listeners: elbtest.Default80443(elbtest.FakeCert),
	}); err != nil {
		t.Fatal(err)
	}
	r.oopsrc(`{"elb-name": "` + name + `", "application-name": "app", "store": "rel", "lock-ttl": "2s"}`)

	a := r.stallAt(action, 4*time.Second, "rollback", "--yes", "--verify-timeout", "0", "-m", "A")
	if out, code := r.oops("rollback", "--yes", "--verify-timeout", "0", "--lock-wait", "30s", "--force", "-m", "B"); code != 0 {
		t.Fatalf("B's rollback: exit %d\n%s", code, out)
	}
	afterB := r.calls()
	a.resume(t)
	r.noCallsSince(afterB, "A")
	a.landed()
	r.mended("A's late " + action)

	snap, err := elbtest.Read(r.ctx, r.cfg(), name)
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
}

// testFencedALB: A's rollback is held at its first ModifyListener; B rolls
// back twice (to green and back to blue). A's late call moves one listener
// to green: status reports the split (exit 8) and repair mends it.
func testFencedALB(t *testing.T, m *elbtest.Moto) {
	r := newAWSRig(t, m, "100000000904")
	lb, err := albtest.New(r.ctx, r.cfg(), albtest.Options{Name: "fencealb", Ports: []int{80, 443}})
	if err != nil {
		t.Fatal(err)
	}
	r.oopsrc(fmt.Sprintf(`{"alb-name": %q, "application-name": "app", "store": "rel", "lock-ttl": "2s"}`, lb.Name))

	a := r.stallAt("ModifyListener", 4*time.Second, "rollback", "--yes", "--force", "--verify-timeout", "0", "-m", "A")
	for _, why := range []string{"B1", "B2"} {
		if out, code := r.oops("rollback", "--yes", "--force", "--verify-timeout", "0", "--lock-wait", "30s", "-m", why); code != 0 {
			t.Fatalf("B's rollback %s: exit %d\n%s", why, code, out)
		}
	}
	afterB := r.calls()
	a.resume(t)
	r.noCallsSince(afterB, "A")
	a.landed()
	if out, code := r.oops("status"); code != 8 {
		t.Errorf("status after a late ModifyListener split the listeners: exit %d, want 8\n%s", code, out)
	}
	r.mended("A's late ModifyListener")
}
