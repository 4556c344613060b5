package dns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// userAgent tells the app's logs that the request is oops's health gate.
const userAgent = "oops-health-gate"

// healthyShare is Route 53's own rule: a health check is healthy when more
// than 18% of its checkers say so.
const healthyShare = 0.18

// gated says whether the colors have a health gate: health-check-url, or
// a Route 53 health check on a record.
func (t *Target) gated(s *snapshot) bool {
	if t.cfg.HealthCheckURL != "" {
		return true
	}
	for _, p := range s.pairs {
		for _, r := range p.recs {
			if aws.ToString(r.set.HealthCheckId) != "" {
				return true
			}
		}
	}
	return false
}

// check asks each of c's endpoints once: the Route 53 health check of a
// record that has one, else health-check-url at each of its values.
func (t *Target) check(ctx context.Context, s *snapshot, c release.Color) ([]target.Instance, error) {
	var out []target.Instance
	seen := map[string]bool{}
	for _, p := range s.pairs {
		r := p.recs[c]
		if r == nil {
			return nil, s.problem
		}
		if id := aws.ToString(r.set.HealthCheckId); id != "" {
			if seen["hc "+id] {
				continue
			}
			seen["hc "+id] = true
			in, err := t.healthCheck(ctx, id)
			if err != nil {
				return nil, err
			}
			out = append(out, in)
			continue
		}
		if t.cfg.HealthCheckURL == "" {
			continue
		}
		for _, v := range r.values {
			if seen[v] {
				continue
			}
			seen[v] = true
			u := strings.ReplaceAll(t.cfg.HealthCheckURL, "{host}", urlHost(v))
			in := target.Instance{ID: v, Address: u, State: "healthy", Healthy: true}
			if _, err := health.Get(ctx, t.hc, u, userAgent); err != nil {
				in.State, in.Healthy, in.Reason = "unhealthy", false, err.Error()
			}
			out = append(out, in)
		}
	}
	return out, nil
}

// healthCheck reads a Route 53 health check's latest observations.
func (t *Target) healthCheck(ctx context.Context, id string) (target.Instance, error) {
	out, err := t.api.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
	if err != nil {
		return target.Instance{}, t.explain("GetHealthCheckStatus", id, err)
	}
	in := target.Instance{ID: "health check " + id}
	ok, last := 0, ""
	for _, o := range out.HealthCheckObservations {
		if o.StatusReport == nil {
			continue
		}
		st := aws.ToString(o.StatusReport.Status)
		if strings.HasPrefix(st, "Success") {
			ok++
		} else {
			last = fmt.Sprintf("%s: %s", o.Region, st)
		}
	}
	n := len(out.HealthCheckObservations)
	in.Healthy = n > 0 && float64(ok) > healthyShare*float64(n)
	in.State = fmt.Sprintf("%d/%d checkers healthy", ok, n)
	in.Reason = last
	return in, nil
}

// gate is the verdict on c: nil, or an error wrapping target.ErrUnhealthy
// that names each endpoint that failed.
func (t *Target) gate(ctx context.Context, s *snapshot, c release.Color) error {
	if !t.gated(s) {
		t.logf("%s has no health gate (no health-check-url, no Route 53 health check on the records): %s is not checked", t, c)
		return nil
	}
	ins, err := t.check(ctx, s, c)
	if err != nil {
		return err
	}
	var bad []string
	for _, in := range ins {
		if !in.Healthy {
			why := in.State
			if in.Reason != "" {
				why += ": " + in.Reason
			}
			bad = append(bad, fmt.Sprintf("%s (%s)", in.ID, why))
		}
	}
	if len(ins) == 0 {
		return fmt.Errorf("%w: %s: no endpoint to check", target.ErrUnhealthy, c)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s: %s", target.ErrUnhealthy, c, strings.Join(bad, ", "))
	}
	return nil
}

// Probe checks color c before traffic goes to it.
func (t *Target) Probe(ctx context.Context, c release.Color) error {
	if !c.Valid() {
		return fmt.Errorf("probe: %q is not a color", c)
	}
	t.mu.Lock()
	s := t.last // the read the switch's plan was made from
	t.mu.Unlock()
	var err error
	if s == nil {
		s, err = t.read(ctx)
	}
	if err != nil {
		return err
	}
	return t.gate(ctx, s, c)
}

// Verify asks c's gate every PollInterval until it passes or timeout ends.
func (t *Target) Verify(ctx context.Context, c release.Color, timeout time.Duration) error {
	s, err := t.read(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		err := t.gate(ctx, s, c)
		if err == nil {
			return nil
		}
		if !time.Now().Add(t.cfg.PollInterval).Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("verify %s: %w (last: %v)", c, ctx.Err(), err)
		case <-time.After(t.cfg.PollInterval):
		}
	}
}

// urlHost puts an IPv6 address in brackets for a URL.
func urlHost(v string) string {
	if ip := net.ParseIP(v); ip != nil && ip.To4() == nil {
		return "[" + v + "]"
	}
	return v
}
