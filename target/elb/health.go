package elb

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// Probe is the health gate: an HTTP GET of the health-check-url template
// for color c, once when the template has no {ip}, else once per
// registered instance. An answer that is not health.OK (2xx or 3xx, a
// redirect not followed), or none within ProbeTimeout, fails the gate.
func (t *Target) Probe(ctx context.Context, c release.Color) error {
	tmpl := t.opts.HealthCheckURL
	if tmpl == "" {
		t.logf("no health-check-url in .oopsrc: %s is not probed before the switch", c)
		return nil
	}
	o, err := t.latest(ctx)
	if err != nil {
		return err
	}
	port := strconv.Itoa(int(o.ports[c]))
	urls := map[string]string{} // what is probed -> URL
	if strings.Contains(tmpl, "{ip}") {
		if len(o.instances) == 0 {
			return fmt.Errorf("%w: %s has no registered instances to probe at %s", target.ErrUnhealthy, t, tmpl)
		}
		if t.opts.Addresses == nil {
			return fmt.Errorf("%w: health-check-url %q needs instance addresses, and none can be looked up", target.ErrMisconfigured, tmpl)
		}
		addrs, err := t.opts.Addresses(ctx, o.instances)
		if err != nil {
			return fmt.Errorf("probe %s: look up instance addresses: %w", c, err)
		}
		for _, id := range o.instances {
			ip, ok := addrs[id]
			if !ok || ip == "" {
				return fmt.Errorf("%w: instance %s has no private address to probe", target.ErrUnhealthy, id)
			}
			if strings.Contains(ip, ":") {
				ip = "[" + ip + "]"
			}
			urls[id] = strings.NewReplacer("{ip}", ip, "{port}", port).Replace(tmpl)
		}
	} else {
		u := strings.ReplaceAll(tmpl, "{port}", port)
		urls[u] = u
	}
	var (
		mu    sync.Mutex
		fails []string
		wg    sync.WaitGroup
	)
	for what, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.get(ctx, u); err != nil {
				mu.Lock()
				if what != u {
					err = fmt.Errorf("%s: %w", what, err)
				}
				fails = append(fails, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		sort.Strings(fails)
		return fmt.Errorf("%w: %s probe failed: %s", target.ErrUnhealthy, c, strings.Join(fails, "; "))
	}
	t.logf("%s answers on %d probe(s) of %s", c, len(urls), tmpl)
	return nil
}

func (t *Target) get(ctx context.Context, u string) error {
	if _, err := url.Parse(u); err != nil {
		return fmt.Errorf("bad health-check-url: %w", err)
	}
	_, err := health.Get(ctx, t.opts.HTTPClient, u, userAgent)
	return err
}

// userAgent tells the app's logs the gate's probes from users.
const userAgent = "oops-health-check"

// Verify watches DescribeInstanceHealth until every registered instance is
// InService (success), one is OutOfService (failure), or timeout passes.
// The ELB's view follows the health check, which Apply moved to c's port;
// it changes only after HealthyThreshold/UnhealthyThreshold checks, so
// "all InService" is not accepted before interval x max(thresholds) +
// timeout has passed since the move (the deadline is extended to that when
// shorter, and the wait is said). The health gate before the switch is
// what catches a dead color early.
func (t *Target) Verify(ctx context.Context, c release.Color, timeout time.Duration) error {
	deadline := t.opts.Now().Add(timeout)
	t.mu.Lock()
	judged, judgedFor := t.judged, t.judgedFor
	t.mu.Unlock()
	if now := t.opts.Now(); now.Before(judged) {
		// Said up front: the wait can be long, and the operator mid-incident
		// must know the switch is done and that stopping it is harmless.
		t.logf("traffic is already on %s; the ELB's health check judges %s's port only after %s, so verification waits until then (Ctrl-C stops the wait and leaves %s live)", c, c, judgedFor, c)
		if judged.After(deadline) {
			t.logf("verifying beyond the %s verify-timeout, until the check has judged %s", timeout, c)
			deadline = judged.Add(t.opts.PollInterval)
		}
	}
	said := false
	for {
		out, err := t.api.DescribeInstanceHealth(ctx, &elbsdk.DescribeInstanceHealthInput{LoadBalancerName: aws.String(t.name)})
		if err != nil {
			return t.explain("DescribeInstanceHealth", err)
		}
		if len(out.InstanceStates) == 0 {
			t.logf("%s has no registered instances: nothing to verify", t)
			return nil
		}
		now := t.opts.Now()
		// Until the moved check has judged c's port, instance states still
		// follow the old port's check, both ways: InService says nothing
		// about c, and neither does OutOfService (a rollback away from a
		// color failing the check reads OutOfService at first; taking that
		// for a failure would switch back onto the failing color).
		early := now.Before(judged)
		var bad, waiting []string
		for _, s := range out.InstanceStates {
			in := instance(s)
			switch {
			case in.Healthy:
			case in.State == "OutOfService" && !early:
				bad = append(bad, describeInstance(in))
			default:
				waiting = append(waiting, describeInstance(in))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: %s on %s: %s", target.ErrUnhealthy, c, t, strings.Join(bad, "; "))
		}
		if early {
			if !said {
				t.logf("%s: instance states still follow the old port's check until %s has been judged: waiting", t, c)
				said = true
			}
			// No read before then can decide anything: sleep through it
			// rather than poll the API every PollInterval for a minute.
			if err := t.opts.Sleep(ctx, judged.Sub(now)); err != nil {
				return err
			}
			continue
		}
		if len(waiting) == 0 {
			t.logf("%s: all %d instances InService on %s", t, len(out.InstanceStates), c)
			return nil
		}
		left := deadline.Sub(now)
		if left <= 0 {
			return fmt.Errorf("%w: %s on %s: not InService after %s: %s", target.ErrUnhealthy, c, t, timeout, strings.Join(waiting, "; "))
		}
		if err := t.opts.Sleep(ctx, min(left, t.opts.PollInterval)); err != nil {
			return err
		}
	}
}

func describeInstance(in target.Instance) string {
	s := in.ID + " " + in.State
	if in.Reason != "" {
		s += " (" + in.Reason + ")"
	}
	return s
}

// EC2API is the part of the EC2 API that EC2Addresses calls.
type EC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var _ EC2API = (*ec2.Client)(nil)

// EC2Addresses looks up instances' private addresses, for {ip} in the
// health-check-url (reachable only from inside the VPC).
func EC2Addresses(api EC2API) func(ctx context.Context, ids []string) (map[string]string, error) {
	return func(ctx context.Context, ids []string) (map[string]string, error) {
		out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			return nil, fmt.Errorf("ec2 DescribeInstances (needs ec2:DescribeInstances): %w", err)
		}
		m := map[string]string{}
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				m[aws.ToString(in.InstanceId)] = aws.ToString(in.PrivateIpAddress)
			}
		}
		return m, nil
	}
}

// healthCheckMoved notes that the health check now targets a new port.
func (t *Target) healthCheckMoved(hc *healthCheck) {
	d, why := hc.judgeTime()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.judged, t.judgedFor = t.opts.Now().Add(d), why
}

// judgeTime is how long after a move the ELB's instance states follow the
// check on the new port: enough checks for either threshold, plus the
// last one's timeout.
func (h *healthCheck) judgeTime() (time.Duration, string) {
	th := max(h.Healthy, h.Unhealthy)
	d := time.Duration(h.Interval*th+h.Timeout) * time.Second
	return d, fmt.Sprintf("%ds (interval %ds x threshold %d + timeout %ds)", h.Interval*th+h.Timeout, h.Interval, th, h.Timeout)
}

// gateNote says, in a plan without health-check-url, what checks color to.
func (o *observation) gateNote(to release.Color) string {
	if o.hc == nil || o.hcColor == "" {
		return fmt.Sprintf("note: no health-check-url, and the ELB's health check is not on a color port: nothing checks %s before or after the switch (set health-check-url in .oopsrc)", to)
	}
	_, why := o.hc.judgeTime()
	return fmt.Sprintf("note: no health-check-url: the only health gate is the load balancer's own check (%s), which judges %s only %s after it moves; verification waits that long (set health-check-url in .oopsrc to probe %s before the switch)",
		o.hc.target(o.ports[to]), to, why, to)
}
