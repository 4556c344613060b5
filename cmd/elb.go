package cmd

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
)

// elbTarget opens the Classic ELB called name with the health gate from
// c. ports, when set, are the colors' instance ports for an ELB that has
// no blue/green tags of its own (the preview ELB of oops off). who is
// recorded in the switch tag; logf gets progress lines.
func elbTarget(ctx context.Context, c *config.Config, loadAWS awsLoader, name string, ports map[release.Color]int,
	who string, logf func(string, ...any)) (target.Target, error) {
	cfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	opts := elb.Options{
		Region:         cfg.Region,
		HealthCheckURL: c.HealthCheckURL,
		Ports:          ports,
		Logf:           logf,
		Who:            who,
	}
	if strings.Contains(c.HealthCheckURL, "{ip}") {
		// Only then: DescribeInstances needs its own permission.
		opts.Addresses = elb.EC2Addresses(ec2.NewFromConfig(cfg))
	}
	return elb.New(elbsdk.NewFromConfig(cfg), name, opts), nil
}

// verifyTimeout is --verify-timeout when given, else verify-timeout from
// .oopsrc (loaded by cfg only then), else 60s; 0 turns verification off.
func verifyTimeout(flag time.Duration, set bool, cfg func() (*config.Config, error)) (time.Duration, error) {
	if set {
		if flag < 0 {
			return 0, usageErrorf("--verify-timeout must be 0 (no verification) or more, got %s", flag)
		}
		return flag, nil
	}
	c, err := cfg()
	if err != nil {
		return 0, err
	}
	if d := c.Values.VerifyTimeout; d != nil {
		return *d, nil // parsed when .oopsrc loaded
	}
	return 60 * time.Second, nil
}
