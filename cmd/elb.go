package cmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target/elb"
)

// elbTarget opens the Classic ELB called name with the health gate from
// .oopsrc. ports, when set, are the colors' instance ports for an ELB that
// has no blue/green tags of its own (the preview ELB of oops off).
func (f *Factory) elbTarget(ctx context.Context, name string, ports map[release.Color]int) (*elb.Target, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	cfg, err := f.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	user, host := f.Who()
	opts := elb.Options{
		Region:         cfg.Region,
		HealthCheckURL: c.HealthCheckURL,
		Ports:          ports,
		Logf:           f.progressf,
		Who:            user + "@" + host,
	}
	if strings.Contains(c.HealthCheckURL, "{ip}") {
		// Only then: DescribeInstances needs its own permission.
		opts.Addresses = elb.EC2Addresses(ec2.NewFromConfig(cfg))
	}
	return elb.New(elbsdk.NewFromConfig(cfg), name, opts), nil
}

// progressf writes a progress line on stderr.
func (f *Factory) progressf(format string, args ...any) {
	fmt.Fprintf(f.IO.ErrOut, format+"\n", args...)
}

// verifyTimeout is --verify-timeout when given, else verify-timeout from
// .oopsrc, else 60s; 0 turns verification off.
func (f *Factory) verifyTimeout(flag time.Duration, set bool) (time.Duration, error) {
	if set {
		if flag < 0 {
			return 0, usageErrorf("--verify-timeout must be 0 (no verification) or more, got %s", flag)
		}
		return flag, nil
	}
	c, err := f.Config()
	if err != nil {
		return 0, err
	}
	if d := c.Values.VerifyTimeout; d != nil {
		return *d, nil // parsed when .oopsrc loaded
	}
	return 60 * time.Second, nil
}
