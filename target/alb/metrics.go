package alb

import (
	"context"
	"fmt"
	"strings"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

var _ target.Dimensioned = (*Target)(nil)

// MetricDimensions are the CloudWatch dimensions of color c's target group
// on this ALB (namespace AWS/ApplicationELB): TargetGroup
// "targetgroup/NAME/ID" and LoadBalancer "app/NAME/ID", from the ARNs.
func (t *Target) MetricDimensions(ctx context.Context, c release.Color) (string, map[string]string, error) {
	s, err := t.read(ctx)
	if err != nil {
		return "", nil, err
	}
	g := s.groups[c]
	if g == nil || len(s.items) == 0 {
		return "", nil, fmt.Errorf("%w: %s has no target group for %s", target.ErrMisconfigured, t, c)
	}
	tg, lb := dimensionOf(g.arn, ":targetgroup/"), dimensionOf(s.items[0].listenerARN, ":listener/")
	if tg == "" || lb == "" {
		return "", nil, fmt.Errorf("%w: cannot tell the CloudWatch dimensions of %s from %s and %s", target.ErrMisconfigured, c, g.arn, s.items[0].listenerARN)
	}
	if i := strings.LastIndexByte(lb, '/'); i > 0 {
		lb = lb[:i] // the listener's own id: app/NAME/ID/LISTENER
	}
	return "AWS/ApplicationELB", map[string]string{"TargetGroup": "targetgroup/" + tg, "LoadBalancer": lb}, nil
}

// dimensionOf is what follows sep in arn ("" when absent).
func dimensionOf(arn, sep string) string {
	_, rest, ok := strings.Cut(arn, sep)
	if !ok {
		return ""
	}
	return rest
}
