package elb_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// Simulation of a real ELB after ConfigureHealthCheck moved to the new
// port: instance states still come from the old port's check (InService)
// until interval x threshold + timeout (30s x 2 + 5s) has passed, then the
// dead new color shows OutOfService. Verify must not accept the stale
// "all InService": it waits out the settle time (even past a shorter
// verify-timeout, and says so) and switches back.
func TestStaleInServiceAfterHealthCheckMoveIsNotTrusted(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{Instances: 1}, elb.Options{Now: clk.Now, Sleep: clk.Sleep, PollInterval: 10 * time.Second})
	// The read at 0s is stale InService; verify then sleeps until the new
	// port's check has judged (65s), whose read is OutOfService.
	e.proxy.Add(faultproxy.Rule{Action: "DescribeInstanceHealth", Skip: 1, Status: 200, Body: elbtest.InstanceHealthXML("OutOfService", e.ids...)})
	start := clk.Now()
	res, err := switchTo(e, target.SwitchOptions{VerifyTimeout: 20 * time.Second})
	if !errors.Is(err, target.ErrVerifyFailed) || res == nil || !res.Reverted {
		t.Fatalf("Switch = %+v, %v; want the stale InService not trusted, verification failed and reverted\n%s", res, err, e.log)
	}
	if waited := clk.Now().Sub(start); waited < 65*time.Second {
		t.Errorf("verify decided after %s, before the health check could judge the new port (65s)", waited)
	}
	if !strings.Contains(e.log.String(), "65s (interval 30s x threshold 2 + timeout 5s)") {
		t.Errorf("the wait for the ELB's check is not explained:\n%s", e.log)
	}
	if got := e.requireOneColor(); got != release.Blue {
		t.Errorf("%s live, want blue", got)
	}
}

// Without health-check-url the plan says the gate is the ELB's own check.
func TestPlanSaysTheGateIsTheELBsCheck(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	res, err := switchTo(e, target.SwitchOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Plan.String()
	if !strings.Contains(got, "no health-check-url: the only health gate is the load balancer's own check (HTTP:8081/healthcheck)") {
		t.Errorf("plan does not say what the gate is:\n%s", got)
	}
}

// The likelier stale read after a lost delete answer: the health check's
// move (the call before the delete) already shows, the delete does not
// yet. That read is not "nothing changed", so it used to be taken as is:
// the health check was moved back and "blue is live again" reported, with
// the listeners gone. Once the delete was sent, a read that shows it not
// applied is read again before anything is undone.
func TestStaleReadShowingOnlyTheHealthCheckMoveIsReadAgain(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{}, elb.Options{Now: clk.Now, Sleep: clk.Sleep})
	rec := &recorder{}
	cfg := awstest.Config(moto.URL)
	cfg.HTTPClient = rec
	if _, err := elbsdk.NewFromConfig(cfg).DescribeLoadBalancers(e.ctx, &elbsdk.DescribeLoadBalancersInput{LoadBalancerNames: []string{e.name}}); err != nil {
		t.Fatal(err)
	}
	stale := strings.ReplaceAll(string(rec.last), "HTTP:8080/healthcheck", "HTTP:8081/healthcheck")
	if stale == string(rec.last) {
		t.Fatalf("fixture's health check is not HTTP:8080/healthcheck:\n%s", rec.last)
	}
	e.proxy.Add(faultproxy.Rule{Action: "DeleteLoadBalancerListeners", Times: 1, Cut: true, After: true})
	e.proxy.Add(faultproxy.Rule{Action: "DescribeLoadBalancers", Skip: 1, Times: 1, Status: 200, Body: stale})
	if _, err := switchTo(e, target.SwitchOptions{}); err != nil {
		t.Fatalf("switch = %v\n%s", err, e.log)
	}
	if strings.Contains(e.log.String(), "undoing the switch") {
		t.Errorf("recovery undid on a stale read after the delete:\n%s", e.log)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("%s live, want green", got)
	}
}

// A switch killed after it moved the health check is finished by the
// next rollback, which makes no ConfigureHealthCheck of its own: when the
// check moved is unknown (seconds ago, maybe), so "all InService" is not
// trusted before a full judge time from now either.
func TestResumedSwitchDoesNotTrustInServiceAtOnce(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	e := setup(t, elbtest.Fixture{Instances: 1}, elb.Options{Now: clk.Now, Sleep: clk.Sleep, PollInterval: 10 * time.Second})
	killedBetweenDeleteAndCreate(t, e)
	// The next oops process: a new Target, which moved nothing itself.
	e.tgt = elb.New(elbsdk.NewFromConfig(e.cfg), e.name, elb.Options{Now: clk.Now, Sleep: clk.Sleep, PollInterval: 10 * time.Second, Logf: e.log.logf, Region: awstest.Region})
	start := clk.Now()
	if _, err := switchTo(e, target.SwitchOptions{Resume: true, VerifyTimeout: time.Minute}); err != nil {
		t.Fatalf("switch = %v\n%s", err, e.log)
	}
	if waited := clk.Now().Sub(start); waited < 65*time.Second {
		t.Errorf("verification accepted InService after %s, before the check could have judged green (65s)\n%s", waited, e.log)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("%s live, want green", got)
	}
}
