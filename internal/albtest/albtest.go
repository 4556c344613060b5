// Package albtest builds Application Load Balancers with blue and green
// target groups on moto, for the ALB target's tests, the CLI scripts and the
// rollback benchmark. Targets are fake addresses that are never dialed.
package albtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/oops-deploy/oops/release"
)

// Options shape the load balancer.
type Options struct {
	// Name of the ALB; target groups are Name-blue and Name-green.
	Name string
	// Ports get one listener each; 443 is HTTPS with a certificate.
	// Default: 80.
	Ports []int
	// Live is where every listener forwards at first (default blue).
	Live release.Color
	// Weighted puts both colors in the forward (the off one at weight 0),
	// as oops leaves it after its first switch; otherwise the listeners
	// forward to the live target group alone.
	Weighted bool
	// Untagged leaves out the oops:color tags (colors named in .oopsrc).
	Untagged bool
	// Rule adds a path rule (priority 10) on the first listener that
	// forwards to the live color.
	Rule bool
	// Targets per target group (default 2).
	Targets int
	// ASG makes each color an auto-scaling group (Name-blue-asg,
	// Name-green-asg, tagged oops:color unless Untagged) launching from
	// the launch template Name-lt, attached to its instance target group:
	// the live one with Targets instances, the off one with OffSize.
	ASG     bool
	OffSize int
}

// ALB is what New created.
type ALB struct {
	Name, ARN string
	// Listeners by port.
	Listeners map[int]string
	// Rule is the path rule's ARN, when asked for.
	Rule string
	// Groups are the target groups' ARNs and Names their names, by color.
	Groups map[release.Color]string
	Names  map[release.Color]string
	// ASGs are the auto-scaling groups' names by color (Options.ASG).
	ASGs map[release.Color]string
}

// New creates a VPC with two subnets, the ALB, two target groups with
// registered targets, and the listeners, through the endpoint of cfg.
func New(ctx context.Context, cfg aws.Config, o Options) (*ALB, error) {
	if len(o.Ports) == 0 {
		o.Ports = []int{80}
	}
	if o.Live == "" {
		o.Live = release.Blue
	}
	if o.Targets == 0 {
		o.Targets = 2
	}
	// moto sometimes answers 500 to concurrent fixture calls; retry those.
	ec := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.RetryMaxAttempts = 5 })
	api := elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.RetryMaxAttempts = 5 })
	vpc, err := ec.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		return nil, fmt.Errorf("create vpc: %w", err)
	}
	var subnets []string
	for i, az := range []string{"a", "b"} {
		sn, err := ec.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i+1)), AvailabilityZone: aws.String(cfg.Region + az),
		})
		if err != nil {
			return nil, fmt.Errorf("create subnet: %w", err)
		}
		subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	lb, err := api.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String(o.Name), Subnets: subnets})
	if err != nil {
		return nil, fmt.Errorf("create load balancer: %w", err)
	}
	a := &ALB{Name: o.Name, ARN: aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), Listeners: map[int]string{},
		Groups: map[release.Color]string{}, Names: map[release.Color]string{}}
	for _, c := range []release.Color{release.Blue, release.Green} {
		in := &elbv2.CreateTargetGroupInput{
			Name: aws.String(o.Name + "-" + string(c)), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(8080),
			VpcId: vpc.Vpc.VpcId, TargetType: types.TargetTypeEnumIp,
		}
		if o.ASG {
			// Instances of both groups may serve on one port; different
			// ones show which target group a hook read its port from.
			in.TargetType = types.TargetTypeEnumInstance
			if c == release.Green {
				in.Port = aws.Int32(8081)
			}
		}
		if !o.Untagged {
			in.Tags = []types.Tag{{Key: aws.String("oops:color"), Value: aws.String(string(c))}}
		}
		tg, err := api.CreateTargetGroup(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("create target group: %w", err)
		}
		arn := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
		a.Groups[c], a.Names[c] = arn, aws.ToString(tg.TargetGroups[0].TargetGroupName)
		var ts []types.TargetDescription
		for i := range o.Targets {
			if o.ASG {
				break // the groups register their instances
			}
			octet := 10 + i
			if c == release.Green {
				octet += 100
			}
			ts = append(ts, types.TargetDescription{Id: aws.String(fmt.Sprintf("10.0.1.%d", octet)), Port: aws.Int32(8080)})
		}
		if len(ts) == 0 {
			continue
		}
		if _, err := api.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: ts}); err != nil {
			return nil, fmt.Errorf("register targets: %w", err)
		}
	}
	if o.ASG {
		if err := a.groups(ctx, cfg, o, strings.Join(subnets, ",")); err != nil {
			return nil, err
		}
	}
	forward := a.Forward(o.Live, 100)
	if !o.Weighted {
		forward = []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(a.Groups[o.Live])}}
	}
	for _, port := range o.Ports {
		in := &elbv2.CreateListenerInput{
			LoadBalancerArn: aws.String(a.ARN), Port: aws.Int32(int32(port)), Protocol: types.ProtocolEnumHttp, DefaultActions: forward,
		}
		if port == 443 {
			cert, err := requestCertificate(ctx, cfg, o.Name+".example.com")
			if err != nil {
				return nil, err
			}
			in.Protocol = types.ProtocolEnumHttps
			in.Certificates = []types.Certificate{{CertificateArn: aws.String(cert)}}
		}
		l, err := api.CreateListener(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("create listener %d: %w", port, err)
		}
		a.Listeners[port] = aws.ToString(l.Listeners[0].ListenerArn)
	}
	if o.Rule {
		r, err := api.CreateRule(ctx, &elbv2.CreateRuleInput{
			ListenerArn: aws.String(a.Listeners[o.Ports[0]]), Priority: aws.Int32(10), Actions: forward,
			Conditions: []types.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/api/*"}}},
		})
		if err != nil {
			return nil, fmt.Errorf("create rule: %w", err)
		}
		a.Rule = aws.ToString(r.Rules[0].RuleArn)
	}
	return a, nil
}

// groups creates the launch template and one auto-scaling group per color.
func (a *ALB) groups(ctx context.Context, cfg aws.Config, o Options, subnets string) error {
	ec := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.RetryMaxAttempts = 5 })
	as := autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.RetryMaxAttempts = 5 })
	lt, err := ec.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(o.Name + "-lt"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro},
	})
	if err != nil {
		return fmt.Errorf("create launch template: %w", err)
	}
	a.ASGs = map[release.Color]string{}
	for _, c := range []release.Color{release.Blue, release.Green} {
		size := o.Targets
		if c != o.Live {
			size = o.OffSize
		}
		name := o.Name + "-" + string(c) + "-asg"
		in := &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(name),
			LaunchTemplate:       &astypes.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, Version: aws.String("1")},
			MinSize:              aws.Int32(0), MaxSize: aws.Int32(10), DesiredCapacity: aws.Int32(int32(size)),
			VPCZoneIdentifier: aws.String(subnets),
			TargetGroupARNs:   []string{a.Groups[c]},
		}
		if !o.Untagged {
			in.Tags = []astypes.Tag{{Key: aws.String("oops:color"), Value: aws.String(string(c)), ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group")}}
		}
		if _, err := as.CreateAutoScalingGroup(ctx, in); err != nil {
			return fmt.Errorf("create auto-scaling group %s: %w", name, err)
		}
		a.ASGs[c] = name
	}
	return nil
}

// Forward is a weighted forward action: percent to c, the rest to the other.
func (a *ALB) Forward(c release.Color, percent int) []types.Action {
	return []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
		{TargetGroupArn: aws.String(a.Groups[c]), Weight: aws.Int32(int32(percent))},
		{TargetGroupArn: aws.String(a.Groups[c.Other()]), Weight: aws.Int32(int32(100 - percent))},
	}}}}
}

// Weights reads what the listener on port forwards: percent by color
// (a target group that is not a color is reported by its ARN).
func (a *ALB) Weights(ctx context.Context, cfg aws.Config, port int) (map[string]int, error) {
	out, err := elbv2.NewFromConfig(cfg).DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{a.Listeners[port]}})
	if err != nil {
		return nil, fmt.Errorf("describe listener %d: %w", port, err)
	}
	return a.weights(out.Listeners[0].DefaultActions), nil
}

// RuleWeights is Weights for the path rule.
func (a *ALB) RuleWeights(ctx context.Context, cfg aws.Config) (map[string]int, error) {
	out, err := elbv2.NewFromConfig(cfg).DescribeRules(ctx, &elbv2.DescribeRulesInput{RuleArns: []string{a.Rule}})
	if err != nil {
		return nil, fmt.Errorf("describe rule: %w", err)
	}
	return a.weights(out.Rules[0].Actions), nil
}

func (a *ALB) weights(actions []types.Action) map[string]int {
	name := map[string]string{a.Groups[release.Blue]: "blue", a.Groups[release.Green]: "green"}
	w := map[string]int{}
	for _, act := range actions {
		if act.Type != types.ActionTypeEnumForward {
			continue
		}
		if act.ForwardConfig == nil || len(act.ForwardConfig.TargetGroups) == 0 {
			w[name[aws.ToString(act.TargetGroupArn)]] = 100
			continue
		}
		total := int32(0)
		for _, tg := range act.ForwardConfig.TargetGroups {
			total += aws.ToInt32(tg.Weight)
		}
		for _, tg := range act.ForwardConfig.TargetGroups {
			k := name[aws.ToString(tg.TargetGroupArn)]
			if k == "" {
				k = aws.ToString(tg.TargetGroupArn)
			}
			if total > 0 {
				w[k] = int(aws.ToInt32(tg.Weight) * 100 / total)
			}
		}
	}
	return w
}

// SetForward points the listener on port at percent of c, as an operator
// in the console (or a crashed tool) might.
func (a *ALB) SetForward(ctx context.Context, cfg aws.Config, port int, c release.Color, percent int) error {
	_, err := elbv2.NewFromConfig(cfg).ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(a.Listeners[port]), DefaultActions: a.Forward(c, percent)})
	if err != nil {
		return fmt.Errorf("modify listener %d: %w", port, err)
	}
	return nil
}

// Tag returns the value of tag key on c's target group.
func (a *ALB) Tag(ctx context.Context, cfg aws.Config, c release.Color, key string) (string, error) {
	out, err := elbv2.NewFromConfig(cfg).DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{a.Groups[c]}})
	if err != nil {
		return "", fmt.Errorf("describe tags: %w", err)
	}
	for _, d := range out.TagDescriptions {
		for _, t := range d.Tags {
			if aws.ToString(t.Key) == key {
				return aws.ToString(t.Value), nil
			}
		}
	}
	return "", nil
}

// HealthBody is a DescribeTargetHealth answer in which every listed target
// has state (healthy, unhealthy, unused, ...), to inject through
// faultproxy: moto always reports registered targets healthy.
func HealthBody(state, reason string, ids ...string) string {
	var b strings.Builder
	b.WriteString(`<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeTargetHealthResult><TargetHealthDescriptions>`)
	for _, id := range ids {
		fmt.Fprintf(&b, `<member><Target><Id>%s</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>%s</State>`, id, state)
		if reason != "" {
			fmt.Fprintf(&b, `<Reason>%s</Reason><Description>injected by the test</Description>`, reason)
		}
		b.WriteString(`</TargetHealth></member>`)
	}
	b.WriteString(`</TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>injected</RequestId></ResponseMetadata></DescribeTargetHealthResponse>`)
	return b.String()
}

// requestCertificate asks moto's ACM for a certificate for an HTTPS
// listener (one JSON call, not worth a client).
func requestCertificate(ctx context.Context, cfg aws.Config, domain string) (string, error) {
	body, _ := json.Marshal(map[string]string{"DomainName": domain})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, aws.ToString(cfg.BaseEndpoint), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Amz-Target", "CertificateManager.RequestCertificate")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20240101/"+cfg.Region+"/acm/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("request certificate: %w", err)
	}
	defer resp.Body.Close()
	var out struct{ CertificateArn string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.CertificateArn == "" {
		return "", fmt.Errorf("request certificate: status %s: %v", resp.Status, err)
	}
	return out.CertificateArn, nil
}
