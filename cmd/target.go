package cmd

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// awsLoader loads the AWS configuration (Factory.AWSConfig). The builders
// call it only after .oopsrc has been checked, so a .oopsrc problem is
// reported before missing credentials.
type awsLoader func(context.Context) (aws.Config, error)

// TargetOptions say which target a command needs; the zero value is the
// main target named by .oopsrc.
type TargetOptions struct {
	// Weighted names the command that splits traffic ("oops shift"): a
	// target that cannot is refused before any call.
	Weighted string
	// PreviewOf is the state of the main target whose preview load
	// balancer is opened instead (oops off points it at the off color).
	PreviewOf *target.State
}

// Target opens the traffic target named by .oopsrc.
func (f *Factory) Target(ctx context.Context) (target.Target, error) {
	return f.TargetFor(ctx, TargetOptions{})
}

// TargetFor opens the target a command needs (opts) from .oopsrc.
func (f *Factory) TargetFor(ctx context.Context, opts TargetOptions) (target.Target, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	user, host := f.Who()
	who := user + "@" + host
	if opts.PreviewOf != nil {
		name, ports, err := previewELB(c, opts.PreviewOf)
		if err != nil {
			return nil, err
		}
		return elbTarget(ctx, c, f.AWSConfig, name, ports, who, f.IO.Progressf)
	}
	if opts.Weighted != "" {
		if err := canSplitTraffic(c, opts.Weighted); err != nil {
			return nil, err
		}
	}
	return openTarget(ctx, c, f.AWSConfig, who, f.IO.Progressf, f.Now, f.Index)
}

// openTarget opens the main target of c: the AWS ones load their
// configuration with loadAWS and log progress with logf (who is recorded
// in their switch tags); the local one reads releases through index.
func openTarget(ctx context.Context, c *config.Config, loadAWS awsLoader, who string, logf func(string, ...any),
	now func() time.Time, index func(context.Context) (*store.Index, error)) (target.Target, error) {
	switch kind := c.TargetKind(); kind {
	case "elb":
		return elbTarget(ctx, c, loadAWS, c.ELBName, nil, who, logf)
	case "alb":
		return albTarget(ctx, c, loadAWS)
	case "local":
		t, err := localTarget(c, now, index)
		if err != nil {
			return nil, err // not a typed nil
		}
		return t, nil
	case "":
		return nil, withHint(usageErrorf("%s: no target configured", c.Path),
			`set "elb-name" (Classic ELB), "alb-name" (ALB) or "target": "local" in .oopsrc`)
	default:
		return nil, withHint(usageErrorf("%s: unknown target %q", c.Path, kind), `"target" is one of elb, alb, local`)
	}
}

// canSplitTraffic refuses, for command, a target that cannot split
// traffic, before any call.
func canSplitTraffic(c *config.Config, command string) error {
	if c.TargetKind() != "alb" {
		return withHint(usageErrorf("%s needs a target that can split traffic: an ALB (alb-name or listener-arn in %s)", command, c.Path),
			"a Classic ELB and the local proxy switch all traffic at once: use oops rollback or oops deploy")
	}
	return nil
}

// previewELB names the preview load balancer of the target whose state is
// main, with main's ports for the colors (a preview ELB may have no
// blue/green tags of its own).
func previewELB(c *config.Config, main *target.State) (string, map[release.Color]int, error) {
	switch kind := c.TargetKind(); kind {
	case "elb":
		if c.PreviewELBName == "" {
			return "", nil, withHint(usageErrorf("%s: no preview-elb-name: oops off needs a preview ELB", c.Path),
				`add "preview-elb-name": "<name of the preview ELB>" to .oopsrc`)
		}
		ports := map[release.Color]int{}
		for _, cs := range []target.ColorState{main.Live, main.Off} {
			ports[cs.Color] = cs.Port
		}
		return c.PreviewELBName, ports, nil
	default:
		return "", nil, usageErrorf("oops off points a preview Classic ELB (preview-elb-name) at the off color; the %s target has no preview", kind)
	}
}
