package cmd

import (
	"context"

	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// albTarget opens the ALB named by alb-name or listener-arn in c.
func albTarget(ctx context.Context, c *config.Config, loadAWS awsLoader) (target.Target, error) {
	cfg := alb.Config{
		Name: c.ALBName, ListenerARN: c.ListenerARN,
		BlueTargetGroup: c.BlueTargetGroup, GreenTargetGroup: c.GreenTargetGroup,
		MinHealthy: c.MinHealthy,
	}
	if _, err := alb.New(nil, cfg); err != nil {
		// Checked before loading AWS credentials: it is a .oopsrc problem.
		return nil, withHint(usageErrorf("%s: %v", c.Path, err), "see the ALB section of the README")
	}
	aws, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	t, err := alb.New(elbv2.NewFromConfig(aws), cfg)
	if err != nil {
		return nil, err // not a typed nil
	}
	return t, nil
}
