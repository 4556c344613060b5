package backend

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
	"github.com/oops-deploy/oops/target/asg"
	"github.com/oops-deploy/oops/target/dns"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/local"
	"github.com/oops-deploy/oops/workflow"
)

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

// MainTarget opens the traffic target named by .oopsrc.
func (s *Set) MainTarget(ctx context.Context) (target.Target, error) {
	return s.Target(ctx, TargetOptions{})
}

// Target opens the target a command needs (opts) from .oopsrc. What
// .oopsrc gets wrong is said before AWS is asked for credentials.
func (s *Set) Target(ctx context.Context, opts TargetOptions) (target.Target, error) {
	c, err := s.env.Config()
	if err != nil {
		return nil, err
	}
	if opts.PreviewOf != nil {
		name, ports, err := previewELB(c, opts.PreviewOf)
		if err != nil {
			return nil, err
		}
		return s.elbTarget(ctx, c, name, ports)
	}
	if opts.Weighted != "" {
		if err := canSplitTraffic(c, opts.Weighted); err != nil {
			return nil, err
		}
	}
	switch kind := c.TargetKind(); kind {
	case "elb":
		return s.elbTarget(ctx, c, c.ELBName, nil)
	case "alb":
		return s.albTarget(ctx, c)
	case "dns":
		return s.dnsTarget(ctx, c)
	case "local":
		t, err := s.LocalTarget(c)
		if err != nil {
			return nil, err // not a typed nil
		}
		return t, nil
	case "":
		return nil, target.Hinted(workflow.Usagef("%s: no target configured", c.Path),
			`set "elb-name" (Classic ELB), "alb-name" (ALB), "dns-name" (Route 53) or "target": "local" in .oopsrc`)
	default:
		return nil, target.Hinted(workflow.Usagef("%s: unknown target %q", c.Path, kind), `"target" is one of elb, alb, dns, local`)
	}
}

// canSplitTraffic refuses, for command, a target that cannot split
// traffic, before any call.
func canSplitTraffic(c *config.Config, command string) error {
	if k := c.TargetKind(); k != "alb" && k != "dns" {
		return target.Hinted(workflow.Usagef("%s needs a target that can split traffic: an ALB (alb-name or listener-arn in %s) or Route 53 weighted records (dns-name)", command, c.Path),
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
			return "", nil, target.Hinted(workflow.Usagef("%s: no preview-elb-name: oops off needs a preview ELB", c.Path),
				`add "preview-elb-name": "<name of the preview ELB>" to .oopsrc`)
		}
		ports := map[release.Color]int{}
		for _, cs := range []target.ColorState{main.Live, main.Off} {
			ports[cs.Color] = cs.Port
		}
		return c.PreviewELBName, ports, nil
	default:
		return "", nil, workflow.Usagef("oops off points a preview Classic ELB (preview-elb-name) at the off color; the %s target has no preview", kind)
	}
}

// elbTarget opens the Classic ELB called name with the health gate from
// c. ports, when set, are the colors' instance ports for an ELB that has
// no blue/green tags of its own (the preview ELB of oops off).
func (s *Set) elbTarget(ctx context.Context, c *config.Config, name string, ports map[release.Color]int) (target.Target, error) {
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	user, host := s.env.Who()
	opts := elb.Options{
		Region:         cfg.Region,
		HealthCheckURL: c.HealthCheckURL,
		Ports:          ports,
		Logf:           s.env.Logf,
		Who:            user + "@" + host,
	}
	if strings.Contains(c.HealthCheckURL, "{ip}") {
		// Only then: DescribeInstances needs its own permission.
		opts.Addresses = elb.EC2Addresses(ec2.NewFromConfig(cfg))
	}
	return elb.New(elbsdk.NewFromConfig(cfg), name, opts), nil
}

// albTarget opens the ALB named by alb-name or listener-arn in c.
func (s *Set) albTarget(ctx context.Context, c *config.Config) (target.Target, error) {
	cfg := alb.Config{
		Name: c.ALBName, ListenerARN: c.ListenerARN,
		BlueTargetGroup: c.BlueTargetGroup, GreenTargetGroup: c.GreenTargetGroup,
		MinHealthy: c.MinHealthy,
	}
	if _, err := alb.New(nil, cfg); err != nil {
		// Checked before loading AWS credentials: it is a .oopsrc problem.
		return nil, target.Hinted(workflow.Usagef("%s: %v", c.Path, err), "see the ALB section of the README")
	}
	aws, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	t, err := alb.New(elbv2.NewFromConfig(aws), cfg)
	if err != nil {
		return nil, err // not a typed nil
	}
	if !c.UsesASG() {
		return t, nil
	}
	ac := asg.Config{ScaleTimeout: c.Values.ScaleTimeout, Logf: s.env.Logf}
	if c.BlueASG != "" {
		ac.Names = map[release.Color]string{release.Blue: c.BlueASG, release.Green: c.GreenASG}
	}
	if c.OffCapacity != nil {
		ac.OffCapacity = *c.OffCapacity
	}
	g, err := asg.New(t, autoscaling.NewFromConfig(aws), ec2.NewFromConfig(aws), ac)
	if err != nil {
		return nil, err // not a typed nil
	}
	return g, nil
}

// dnsTarget opens the Route 53 weighted records named by dns-name in c.
func (s *Set) dnsTarget(ctx context.Context, c *config.Config) (target.Target, error) {
	cfg := dns.Config{
		DNSName: c.DNSName, HostedZoneID: c.HostedZoneID, HealthCheckURL: c.HealthCheckURL,
		Now: s.env.Now, Logf: s.env.Logf,
	}
	if _, err := dns.New(nil, cfg); err != nil {
		// Checked before loading AWS credentials: it is a .oopsrc problem.
		return nil, target.Hinted(workflow.Usagef("%s: %v", c.Path, err), "see the Route 53 (DNS) target section of the README")
	}
	aws, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	t, err := dns.New(route53.NewFromConfig(aws), cfg)
	if err != nil {
		return nil, err // not a typed nil
	}
	return t, nil
}

// LocalTarget opens the built-in proxy target ("target": "local") with the
// ports, command and state directory from c (oops proxy serves it).
func (s *Set) LocalTarget(c *config.Config) (*local.Target, error) {
	drain := local.DefaultDrainTimeout
	if d := c.Values.DrainTimeout; d > 0 {
		drain = d // parsed when .oopsrc loaded
	}
	stateDir := c.StateDir
	if stateDir == "" {
		stateDir = local.DefaultStateDir
	}
	if !filepath.IsAbs(stateDir) {
		stateDir = filepath.Join(c.Dir, stateDir)
	}
	t, err := local.New(local.Options{
		App:           c.ApplicationName,
		StateDir:      stateDir,
		Listen:        c.Listen,
		PreviewListen: c.PreviewListen,
		BluePort:      c.BluePort,
		GreenPort:     c.GreenPort,
		Command:       c.Command,
		HealthPath:    c.HealthPath,
		DrainTimeout:  drain,
		// Parsed when .oopsrc loaded; 0: the proxy's defaults.
		MaxConnections: c.Values.MaxConnections,
		HeaderTimeout:  c.Values.HeaderTimeout,
		BodyTimeout:    c.Values.BodyTimeout,
		WriteTimeout:   c.Values.WriteTimeout,
		IdleTimeout:    c.Values.IdleTimeout,
		Archive:        workflow.ArchiveLimits(c),
		Now:            s.env.Now,
		Open: func(ctx context.Context, rel release.Release) (io.ReadCloser, error) {
			idx, err := s.Index(ctx)
			if err != nil {
				return nil, err
			}
			return idx.Open(ctx, rel)
		},
		// Parsed when .oopsrc loaded; unset: the proxy's defaults.
		TrustedProxies:  c.Values.TrustedProxies,
		UpstreamTimeout: c.Values.UpstreamTimeout,
	})
	if err != nil {
		return nil, &config.Error{Path: c.Path, Msg: err.Error(), Hint: "see the local target keys in .oopsrc.example"}
	}
	if err := local.CheckStateDir(stateDir); err != nil {
		return nil, unsafeStateDir(c, err)
	}
	return t, nil
}

// unsafeStateDir turns a state directory others could write into a config
// error (exit 2) whose hint is the command that fixes it.
func unsafeStateDir(c *config.Config, err error) error {
	var ue *local.UnsafeStateError
	if errors.As(err, &ue) {
		return &UnsafeStateDirError{&config.Error{Path: c.Path, Msg: ue.Error(), Hint: ue.Hint()}}
	}
	return err
}

// UnsafeStateDirError is a config error that commands which otherwise read
// around an unreadable target (oops list) refuse on too.
type UnsafeStateDirError struct{ ce *config.Error }

func (e *UnsafeStateDirError) Error() string { return e.ce.Error() }
func (e *UnsafeStateDirError) Unwrap() error { return e.ce }

// Unsafe marks it as an error oops list refuses on
// (workflow.ReleaseStatus reads around other target errors).
func (e *UnsafeStateDirError) Unsafe() bool { return true }
