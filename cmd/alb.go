package cmd

import (
	"context"

	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// albTarget opens the ALB named by alb-name or listener-arn in .oopsrc.
func (f *Factory) albTarget(ctx context.Context) (target.Target, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	cfg := alb.Config{
		Name: c.ALBName, ListenerARN: c.ListenerARN,
		BlueTargetGroup: c.BlueTargetGroup, GreenTargetGroup: c.GreenTargetGroup,
		MinHealthy: c.MinHealthy,
	}
	if _, err := alb.New(nil, cfg); err != nil {
		// Checked before loading AWS credentials: it is a .oopsrc problem.
		return nil, withHint(usageErrorf("%s: %v", c.Path, err), "see the ALB section of the README")
	}
	aws, err := f.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	return alb.New(elbv2.NewFromConfig(aws), cfg)
}
