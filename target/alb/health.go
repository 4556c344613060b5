package alb

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// health is one DescribeTargetHealth answer, counted.
type health struct {
	registered, healthy int
	// notInUse counts targets the ALB does not check because their target
	// group is not attached to it (reason Target.NotInUse).
	notInUse int
	// waiting counts targets whose health is not known yet (initial, or
	// unused just after their group was attached).
	waiting   int
	bad       []string
	instances []target.Instance
}

// health reads the targets of g. Draining targets are leaving and count
// as neither registered nor healthy.
func (t *Target) health(ctx context.Context, g *group) (*health, error) {
	out, err := t.api.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(g.arn)})
	if err != nil {
		return nil, t.explain("DescribeTargetHealth", g.name, err)
	}
	h := &health{}
	for _, d := range out.TargetHealthDescriptions {
		var state types.TargetHealthStateEnum
		var reason, desc string
		if d.TargetHealth != nil {
			state, reason, desc = d.TargetHealth.State, string(d.TargetHealth.Reason), aws.ToString(d.TargetHealth.Description)
		}
		id := "?"
		if d.Target != nil {
			id = aws.ToString(d.Target.Id)
			if d.Target.Port != nil {
				id += fmt.Sprintf(":%d", *d.Target.Port)
			}
		}
		in := target.Instance{ID: id, State: string(state), Healthy: state == types.TargetHealthStateEnumHealthy, Reason: desc}
		if in.Reason == "" {
			in.Reason = reason
		}
		h.instances = append(h.instances, in)
		if state == types.TargetHealthStateEnumDraining {
			continue
		}
		h.registered++
		if in.Healthy {
			h.healthy++
			continue
		}
		if reason == string(types.TargetHealthReasonEnumNotInUse) {
			h.notInUse++
		}
		if state == types.TargetHealthStateEnumInitial || state == types.TargetHealthStateEnumUnused {
			h.waiting++
		}
		line := fmt.Sprintf("%s %s", id, state)
		if reason != "" {
			line += " (" + reason
			if desc != "" {
				line += ": " + desc
			}
			line += ")"
		}
		h.bad = append(h.bad, line)
	}
	return h, nil
}

// need is min-healthy, or by default every registered target and at least one.
func (t *Target) need(h *health) int {
	if t.cfg.MinHealthy != nil {
		return *t.cfg.MinHealthy
	}
	return max(1, h.registered)
}

func (t *Target) probeGroup(ctx context.Context, c release.Color, g *group) error {
	h, err := t.health(ctx, g)
	if err != nil {
		return err
	}
	return h.check(c, g, t.need(h))
}

// check passes when at least need targets are healthy.
func (h *health) check(c release.Color, g *group, need int) error {
	if h.healthy >= need {
		return nil
	}
	var b strings.Builder
	if h.registered == 0 {
		fmt.Fprintf(&b, "%s (%s) has no registered targets", c, g.name)
	} else {
		fmt.Fprintf(&b, "%s (%s): %d of %d targets healthy, need %d", c, g.name, h.healthy, h.registered, need)
	}
	if len(h.bad) > 0 {
		shown := h.bad[:min(len(h.bad), 5)]
		fmt.Fprintf(&b, ": %s", strings.Join(shown, ", "))
		if len(h.bad) > len(shown) {
			fmt.Fprintf(&b, " and %d more", len(h.bad)-len(shown))
		}
	}
	if h.notInUse > 0 {
		fmt.Fprintf(&b, "; %s is not attached to the load balancer, so nothing health-checks it: add it to the listener's forward action at weight 0 (oops keeps it there after its first switch)", g.name)
	}
	return fmt.Errorf("%w: %s", target.ErrUnhealthy, b.String())
}
