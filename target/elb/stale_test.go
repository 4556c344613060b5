package elb_test

import (
	"errors"
	"strings"
	"testing"
	"time"

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
	// Polls at 0s, 10s, ..., 60s read stale InService; from 70s on, the
	// new port's check has judged: OutOfService.
	e.proxy.Add(faultproxy.Rule{Action: "DescribeInstanceHealth", Skip: 7, Status: 200, Body: elbtest.InstanceHealthXML("OutOfService", e.ids...)})
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
