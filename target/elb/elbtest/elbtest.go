// Package elbtest runs moto for Classic ELB tests and benchmarks and builds
// ELBs in it the way operators set them up for oops: tags blue and green,
// listeners 80 and 443, a health check, registered instances.
//
// The server is awstest's, which fixes moto's multi-port
// DeleteLoadBalancerListeners (see the awstest package comment).
package elbtest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
)

// Moto is a running moto server on a loopback port.
type Moto = awstest.Moto

// StartServer starts moto; for TestMain and benchmarks.
func StartServer() (*Moto, error) { return awstest.StartServer() }

// Start starts moto for one test and stops it at cleanup; it skips the
// test without moto (fails it under CI), like awstest.Start.
func Start(tb testing.TB) *Moto {
	tb.Helper()
	m, err := StartServer()
	if err != nil {
		awstest.Unavailable(tb, err)
	}
	tb.Cleanup(m.Stop)
	return m
}

// FakeCert is an IAM server-certificate ARN; moto accepts IAM ARNs on
// listeners without looking them up.
const FakeCert = "arn:aws:iam::123456789012:server-certificate/oops-test"

// SSLPolicy is the SSL negotiation policy fixtures attach to 443.
const SSLPolicy = "oops-ssl-negotiation"

// Listener is a listener of a Fixture.
type Listener struct {
	Port             int32
	Protocol         string
	InstanceProtocol string
	// InstancePort 0 means the live color's port.
	InstancePort int32
	Cert         string
	Policies     []string
}

// Fixture describes an ELB to create.
type Fixture struct {
	Name string
	// Blue and Green are the tag values; "" leaves the tag out.
	Blue, Green string
	// Live is the color the listeners point at.
	Live release.Color
	// Listeners default to HTTP 80 and HTTPS 443 (FakeCert).
	Listeners []Listener
	// HealthCheck is the target; default HTTP:<live port>/healthcheck.
	HealthCheck string
	// CheckInterval is the health check's interval in seconds (at least
	// 5, AWS's least; timeout 2s below 30); 0 is 30 with a 5s timeout. oops waits interval x 2 +
	// timeout for the check to judge a color: tests that wait use 5.
	CheckInterval int32
	// Instances is how many EC2 instances to run and register.
	Instances int
	Tags      map[string]string
	// BackendPolicies are proxy-protocol policies set on the live color's
	// instance port (SetLoadBalancerPoliciesForBackendServer).
	BackendPolicies []string
}

// ProxyProtocol creates a ProxyProtocolPolicyType policy called name on ELB lb.
func ProxyProtocol(ctx context.Context, cfg aws.Config, lb, name string) error {
	_, err := elbsdk.NewFromConfig(cfg).CreateLoadBalancerPolicy(ctx, &elbsdk.CreateLoadBalancerPolicyInput{
		LoadBalancerName: aws.String(lb), PolicyName: aws.String(name), PolicyTypeName: aws.String("ProxyProtocolPolicyType"),
		PolicyAttributes: []types.PolicyAttribute{{AttributeName: aws.String("ProxyProtocol"), AttributeValue: aws.String("true")}},
	})
	return err
}

// Default80443 are the original tool's two listeners.
func Default80443(cert string, policies ...string) []Listener {
	return []Listener{
		{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP"},
		{Port: 443, Protocol: "HTTPS", InstanceProtocol: "HTTP", Cert: cert, Policies: policies},
	}
}

// Create builds f in moto and returns the registered instance IDs.
func Create(ctx context.Context, cfg aws.Config, f Fixture) ([]string, error) {
	api := elbsdk.NewFromConfig(cfg)
	if f.Live == "" {
		f.Live = release.Blue
	}
	live := f.Blue
	if f.Live == release.Green {
		live = f.Green
	}
	livePort, _ := strconv.Atoi(live)
	if f.Listeners == nil {
		f.Listeners = Default80443(FakeCert)
	}
	var ls []types.Listener
	for _, l := range f.Listeners {
		ip := l.InstancePort
		if ip == 0 {
			ip = int32(livePort)
		}
		sl := types.Listener{LoadBalancerPort: l.Port, Protocol: aws.String(l.Protocol), InstanceProtocol: aws.String(l.InstanceProtocol), InstancePort: aws.Int32(ip)}
		if l.Cert != "" {
			sl.SSLCertificateId = aws.String(l.Cert)
		}
		ls = append(ls, sl)
	}
	if _, err := api.CreateLoadBalancer(ctx, &elbsdk.CreateLoadBalancerInput{
		LoadBalancerName: aws.String(f.Name), Listeners: ls, AvailabilityZones: []string{awstest.Region + "a"},
	}); err != nil {
		return nil, fmt.Errorf("create ELB %s: %w", f.Name, err)
	}
	var tags []types.Tag
	if f.Blue != "" {
		tags = append(tags, types.Tag{Key: aws.String("blue"), Value: aws.String(f.Blue)})
	}
	if f.Green != "" {
		tags = append(tags, types.Tag{Key: aws.String("green"), Value: aws.String(f.Green)})
	}
	for k, v := range f.Tags {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if len(tags) > 0 {
		if _, err := api.AddTags(ctx, &elbsdk.AddTagsInput{LoadBalancerNames: []string{f.Name}, Tags: tags}); err != nil {
			return nil, fmt.Errorf("tag ELB %s: %w", f.Name, err)
		}
	}
	if len(f.BackendPolicies) > 0 {
		for _, p := range f.BackendPolicies {
			if err := ProxyProtocol(ctx, cfg, f.Name, p); err != nil {
				return nil, fmt.Errorf("create policy %s: %w", p, err)
			}
		}
		if _, err := api.SetLoadBalancerPoliciesForBackendServer(ctx, &elbsdk.SetLoadBalancerPoliciesForBackendServerInput{
			LoadBalancerName: aws.String(f.Name), InstancePort: aws.Int32(int32(livePort)), PolicyNames: f.BackendPolicies,
		}); err != nil {
			return nil, fmt.Errorf("backend policies of %d: %w", livePort, err)
		}
	}
	hc := f.HealthCheck
	if hc == "" {
		hc = fmt.Sprintf("HTTP:%d/healthcheck", livePort)
	}
	interval, timeout := int32(30), int32(5)
	if f.CheckInterval > 0 && f.CheckInterval < 30 {
		// AWS's least interval is 5s, and the timeout must be shorter.
		interval, timeout = max(f.CheckInterval, 5), 2
	}
	if _, err := api.ConfigureHealthCheck(ctx, &elbsdk.ConfigureHealthCheckInput{LoadBalancerName: aws.String(f.Name), HealthCheck: &types.HealthCheck{
		Target: aws.String(hc), Interval: aws.Int32(interval), Timeout: aws.Int32(timeout), HealthyThreshold: aws.Int32(2), UnhealthyThreshold: aws.Int32(2),
	}}); err != nil {
		return nil, fmt.Errorf("health check of %s: %w", f.Name, err)
	}
	for _, l := range f.Listeners {
		if len(l.Policies) == 0 {
			continue
		}
		for _, p := range l.Policies {
			if _, err := api.CreateLoadBalancerPolicy(ctx, &elbsdk.CreateLoadBalancerPolicyInput{
				LoadBalancerName: aws.String(f.Name), PolicyName: aws.String(p), PolicyTypeName: aws.String("SSLNegotiationPolicyType"),
				PolicyAttributes: []types.PolicyAttribute{{AttributeName: aws.String("Reference-Security-Policy"), AttributeValue: aws.String("ELBSecurityPolicy-TLS-1-2-2017-01")}},
			}); err != nil {
				return nil, fmt.Errorf("create policy %s: %w", p, err)
			}
		}
		if _, err := api.SetLoadBalancerPoliciesOfListener(ctx, &elbsdk.SetLoadBalancerPoliciesOfListenerInput{
			LoadBalancerName: aws.String(f.Name), LoadBalancerPort: l.Port, PolicyNames: l.Policies,
		}); err != nil {
			return nil, fmt.Errorf("attach policies to %d: %w", l.Port, err)
		}
	}
	if f.Instances == 0 {
		return nil, nil
	}
	out, err := ec2.NewFromConfig(cfg).RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-03cf127a"), MinCount: aws.Int32(int32(f.Instances)), MaxCount: aws.Int32(int32(f.Instances)),
		InstanceType: ec2types.InstanceTypeT3Micro,
	})
	if err != nil {
		return nil, fmt.Errorf("run instances: %w", err)
	}
	var ids []string
	var insts []types.Instance
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
		insts = append(insts, types.Instance{InstanceId: in.InstanceId})
	}
	if _, err := api.RegisterInstancesWithLoadBalancer(ctx, &elbsdk.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String(f.Name), Instances: insts}); err != nil {
		return nil, fmt.Errorf("register instances: %w", err)
	}
	return ids, nil
}

// Snapshot is what an ELB looks like, in a form tests compare.
type Snapshot struct {
	// Listeners are "HTTPS:443->HTTP:8081 cert=... policies=a,b", sorted.
	Listeners   []string
	HealthCheck string // "HTTP:8081/healthcheck 30/5/2/2"
	Tags        map[string]string
	// Backends are the backend-server policies, "8081:a,b", sorted.
	Backends []string
}

// String is a one-line summary for failure messages.
func (s *Snapshot) String() string {
	return fmt.Sprintf("listeners=[%s] health=%s", strings.Join(s.Listeners, "; "), s.HealthCheck)
}

// Read takes a Snapshot of ELB name.
func Read(ctx context.Context, cfg aws.Config, name string) (*Snapshot, error) {
	api := elbsdk.NewFromConfig(cfg)
	lb, err := api.DescribeLoadBalancers(ctx, &elbsdk.DescribeLoadBalancersInput{LoadBalancerNames: []string{name}})
	if err != nil {
		return nil, err
	}
	tg, err := api.DescribeTags(ctx, &elbsdk.DescribeTagsInput{LoadBalancerNames: []string{name}})
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Tags: map[string]string{}}
	d := lb.LoadBalancerDescriptions[0]
	for _, ld := range d.ListenerDescriptions {
		l := ld.Listener
		line := fmt.Sprintf("%s:%d->%s:%d", aws.ToString(l.Protocol), l.LoadBalancerPort, aws.ToString(l.InstanceProtocol), aws.ToInt32(l.InstancePort))
		if c := aws.ToString(l.SSLCertificateId); c != "" {
			line += " cert=" + c
		}
		if len(ld.PolicyNames) > 0 {
			ps := append([]string(nil), ld.PolicyNames...)
			sort.Strings(ps)
			line += " policies=" + strings.Join(ps, ",")
		}
		s.Listeners = append(s.Listeners, line)
	}
	sort.Strings(s.Listeners)
	for _, b := range d.BackendServerDescriptions {
		if len(b.PolicyNames) > 0 {
			s.Backends = append(s.Backends, fmt.Sprintf("%d:%s", aws.ToInt32(b.InstancePort), strings.Join(b.PolicyNames, ",")))
		}
	}
	sort.Strings(s.Backends)
	if hc := d.HealthCheck; hc != nil {
		s.HealthCheck = fmt.Sprintf("%s %d/%d/%d/%d", aws.ToString(hc.Target), aws.ToInt32(hc.Interval), aws.ToInt32(hc.Timeout), aws.ToInt32(hc.HealthyThreshold), aws.ToInt32(hc.UnhealthyThreshold))
	}
	for _, td := range tg.TagDescriptions {
		for _, t := range td.Tags {
			s.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return s, nil
}

// InstanceHealthXML is a DescribeInstanceHealth answer in which every
// listed instance has the given state, for injecting through faultproxy
// (moto reports InService for any running instance).
func InstanceHealthXML(state string, ids ...string) string {
	var b strings.Builder
	b.WriteString(`<DescribeInstanceHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"><DescribeInstanceHealthResult><InstanceStates>`)
	for _, id := range ids {
		desc := "N/A"
		if state == "OutOfService" {
			desc = "Instance has failed at least the UnhealthyThreshold number of health checks consecutively."
		}
		fmt.Fprintf(&b, `<member><InstanceId>%s</InstanceId><State>%s</State><ReasonCode>Instance</ReasonCode><Description>%s</Description></member>`, id, state, desc)
	}
	b.WriteString(`</InstanceStates></DescribeInstanceHealthResult><ResponseMetadata><RequestId>simulated</RequestId></ResponseMetadata></DescribeInstanceHealthResponse>`)
	return b.String()
}
