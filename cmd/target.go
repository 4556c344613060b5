package cmd

import (
	"context"

	"github.com/oops-deploy/oops/target"
)

// Target opens the traffic target named by .oopsrc.
func (f *Factory) Target(ctx context.Context) (target.Target, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	switch kind := c.TargetKind(); kind {
	case "elb":
		return f.elbTarget(ctx, c.ELBName, nil)
	case "alb":
		return f.albTarget(ctx)
	case "local":
		return f.openLocal(ctx)
	case "":
		return nil, withHint(usageErrorf("%s: no target configured", c.Path),
			`set "elb-name" (Classic ELB), "alb-name" (ALB) or "target": "local" in .oopsrc`)
	default:
		return nil, withHint(usageErrorf("%s: unknown target %q", c.Path, kind), `"target" is one of elb, alb, local`)
	}
}
