package iampolicy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/config"
)

func load(t *testing.T, rc string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), ".oopsrc")
	if err := os.WriteFile(p, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// call is one AWS call a policy must allow or refuse.
type call struct{ action, resource string }

// TestFor: per kind of .oopsrc, what the operator and the instances may
// and may not do.
func TestFor(t *testing.T) {
	tests := []struct {
		name, rc       string
		empty          bool
		operatorAllows []call
		operatorRefuse []call
		instanceAllows []call
		instanceRefuse []call
	}{
		{
			name:  "directory store, local target",
			rc:    `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"]}`,
			empty: true,
		},
		{
			name: "S3 store with a prefix, Classic ELB with preview, CodeDeploy",
			rc: `{"application-name": "api", "store": "s3://bkt/team/", "elb-name": "web", "preview-elb-name": "web-preview",
				"deployment-group": "dg", "region": "eu-west-1", "health-check-url": "http://{ip}:{port}/health"}`,
			operatorAllows: []call{
				{"s3:PutObject", "arn:aws:s3:::bkt/team/api/0123abc.tar.gz"},
				{"s3:GetObject", "arn:aws:s3:::bkt/team/api/.oops/index.json"},
				{"s3:ListBucket", "arn:aws:s3:::bkt"}, // missing objects answer 404, not 403
				{"s3:ListBucketMultipartUploads", "arn:aws:s3:::bkt"},
				{"elasticloadbalancing:DeleteLoadBalancerListeners", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/web"},
				{"elasticloadbalancing:CreateLoadBalancerListeners", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/web-preview"},
				{"elasticloadbalancing:DescribeLoadBalancers", "*"},
				{"ec2:DescribeInstances", "*"},
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/dg"},
				{"sts:GetCallerIdentity", "*"},
			},
			operatorRefuse: []call{
				{"s3:PutObject", "arn:aws:s3:::bkt/team/other/x"},
				{"s3:PutObject", "arn:aws:s3:::bkt/api/x"},
				{"s3:ListBucket", "arn:aws:s3:::other"},
				{"s3:GetObject", "arn:aws:s3:::other/team/api/x"},
				{"s3:DeleteBucket", "arn:aws:s3:::bkt"},
				{"elasticloadbalancing:DeleteLoadBalancerListeners", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/other"},
				{"elasticloadbalancing:DeleteLoadBalancerListeners", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/web"},
				{"elasticloadbalancing:DeleteLoadBalancer", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/web"},
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/other"},
			},
			instanceAllows: []call{
				{"s3:GetObject", "arn:aws:s3:::bkt/team/api/0123abc.tar.gz"},
				{"s3:PutObject", "arn:aws:s3:::bkt/team/api/.oops/lock.json"},
				{"codedeploy:GetDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/dg"},
				{"elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/web"},
				{"ec2:DescribeInstances", "*"},
			},
			instanceRefuse: []call{
				{"s3:PutObject", "arn:aws:s3:::bkt/team/api/0123abc.tar.gz"},
				{"s3:DeleteObject", "arn:aws:s3:::bkt/team/api/.oops/index.json"},
				{"elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/web-preview"},
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/dg"},
			},
		},
		{
			name: "S3 bucket without prefix, ALB by name",
			rc:   `{"application-name": "api", "s3-bucket": "bkt", "alb-name": "front", "region": "us-east-2"}`,
			operatorAllows: []call{
				{"s3:PutObject", "arn:aws:s3:::bkt/api/0123abc.tar.gz"},
				{"elasticloadbalancing:ModifyListener", "arn:aws:elasticloadbalancing:us-east-2:1:listener/app/front/50dc6c495c0c9188/f2f7dc8efc522ab2"},
				{"elasticloadbalancing:ModifyRule", "arn:aws:elasticloadbalancing:us-east-2:1:listener-rule/app/front/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"},
				{"elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/blue/73e2d6bc24d8a067"},
				{"elasticloadbalancing:DescribeTargetHealth", "*"},
			},
			operatorRefuse: []call{
				{"elasticloadbalancing:ModifyListener", "arn:aws:elasticloadbalancing:us-east-2:1:listener/app/back/50dc6c495c0c9188/f2f7dc8efc522ab2"},
				{"ec2:DescribeInstances", "*"}, // no {ip} in a health-check-url
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:us-east-2:1:deploymentgroup:api/dg"},
			},
		},
		{
			name: "ALB listener and named target groups",
			rc: `{"application-name": "api", "store": "s3://bkt", "region": "us-east-2", "deployment-group": "dg",
				"listener-arn": "arn:aws:elasticloadbalancing:us-east-2:1:listener/app/front/50dc/f2f7",
				"blue-target-group": "api-blue", "green-target-group": "arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/api-green/73e2"}`,
			operatorAllows: []call{
				{"elasticloadbalancing:ModifyListener", "arn:aws:elasticloadbalancing:us-east-2:1:listener/app/front/50dc/f2f7"},
				{"elasticloadbalancing:ModifyRule", "arn:aws:elasticloadbalancing:us-east-2:1:listener-rule/app/front/50dc/f2f7/99"},
				{"elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/api-blue/11"},
				{"elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/api-green/73e2"},
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:us-east-2:1:deploymentgroup:api/dg"},
			},
			operatorRefuse: []call{
				{"elasticloadbalancing:ModifyListener", "arn:aws:elasticloadbalancing:us-east-2:1:listener/app/front/50dc/other"},
				{"elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/api-red/11"},
			},
			instanceAllows: []call{
				{"elasticloadbalancing:ModifyListener", "arn:aws:elasticloadbalancing:us-east-2:1:listener/app/front/50dc/f2f7"},
			},
		},
		{
			name: "Route 53 with hosted-zone-id, a CodeDeploy group per color, SNS",
			rc: `{"application-name": "api", "store": "s3://bkt", "dns-name": "api.example.com", "hosted-zone-id": "Z0123456789ABCDEFGHIJ",
				"blue-deployment-group": "api-blue", "green-deployment-group": "api-green", "region": "eu-west-1",
				"notify": ["sns:arn:aws:sns:eu-west-1:123456789012:releases", "https://hooks.example.com/x"]}`,
			operatorAllows: []call{
				{"route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"},
				{"route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"},
				{"route53:GetChange", "arn:aws:route53:::change/C2682N5HXP0BZ4"},
				{"route53:GetHealthCheckStatus", "arn:aws:route53:::healthcheck/abcdef11-2222-3333-4444-555555fedcba"},
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/api-blue"},
				{"codedeploy:GetDeploymentGroup", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/api-green"},
				{"codedeploy:ListDeploymentTargets", "*"},
				{"sns:Publish", "arn:aws:sns:eu-west-1:123456789012:releases"},
				{"sts:GetCallerIdentity", "*"},
			},
			operatorRefuse: []call{
				{"route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/ZOTHER"},
				{"route53:ListHostedZonesByName", "*"}, // the zone is known
				{"route53:DeleteHostedZone", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"},
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/other"},
				{"sns:Publish", "arn:aws:sns:eu-west-1:123456789012:other"},
				{"elasticloadbalancing:DescribeLoadBalancers", "*"},
			},
			instanceAllows: []call{
				{"route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"}, // oops hook switch
				{"codedeploy:GetDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/api-green"},
				{"sns:Publish", "arn:aws:sns:eu-west-1:123456789012:releases"},
			},
			instanceRefuse: []call{
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/api-blue"},
				{"route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/ZOTHER"},
			},
		},
		{
			name: "Route 53 found from dns-name, deploy-command, directory store",
			rc: `{"application-name": "api", "store": "rel", "dns-name": "api.example.com", "deploy-command": ["./deploy.sh"],
				"notify": ["https://hooks.example.com/x"]}`,
			operatorAllows: []call{
				{"route53:ListHostedZonesByName", "*"}, // no resource-level permission
				{"route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"},
				{"route53:GetChange", "arn:aws:route53:::change/C2682N5HXP0BZ4"},
			},
			operatorRefuse: []call{
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:api/api-blue"},
				{"sns:Publish", "arn:aws:sns:us-east-1:123456789012:releases"}, // webhooks only
				{"s3:GetObject", "arn:aws:s3:::rel/api/x"},
			},
			instanceAllows: []call{
				{"route53:ListHostedZonesByName", "*"},
				{"route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"},
			},
		},
		{
			name: "SNS notifications only: directory store, local target",
			rc: `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"],
				"notify": ["sns:arn:aws:sns:us-west-2:123456789012:a", "sns:arn:aws:sns:eu-west-1:123456789012:b"]}`,
			operatorAllows: []call{
				{"sns:Publish", "arn:aws:sns:us-west-2:123456789012:a"},
				{"sns:Publish", "arn:aws:sns:eu-west-1:123456789012:b"},
			},
			operatorRefuse: []call{
				{"sns:Publish", "arn:aws:sns:us-west-2:123456789012:c"},
				{"route53:ListHostedZonesByName", "*"},
			},
			instanceAllows: []call{
				{"sns:Publish", "arn:aws:sns:eu-west-1:123456789012:b"},
			},
		},
		{
			name: "ALB whose colors are auto-scaling groups, a CodeDeploy group per color",
			rc: `{"application-name": "api", "store": "s3://bkt", "alb-name": "front", "region": "eu-west-1",
				"blue-asg": "api-blue", "green-asg": "api-green", "blue-deployment-group": "dg-blue", "green-deployment-group": "dg-green"}`,
			operatorAllows: []call{
				{"autoscaling:UpdateAutoScalingGroup", "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e:autoScalingGroupName/api-green"},
				{"autoscaling:TerminateInstanceInAutoScalingGroup", "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e:autoScalingGroupName/api-blue"},
				{"autoscaling:DescribeAutoScalingGroups", "*"},
				{"ec2:CreateLaunchTemplateVersion", "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0abc"},
				{"ec2:DescribeLaunchTemplateVersions", "*"},
				{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:api/dg-green"},
			},
			operatorRefuse: []call{
				{"autoscaling:UpdateAutoScalingGroup", "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e:autoScalingGroupName/other"},
				{"autoscaling:DeleteAutoScalingGroup", "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e:autoScalingGroupName/api-blue"},
				{"ec2:CreateLaunchTemplateVersion", "*"},
			},
			instanceAllows: []call{
				{"ec2:DescribeTags", "*"}, // oops hook fetch without instance metadata tags
				{"ec2:DescribeLaunchTemplateVersions", "*"},
			},
			instanceRefuse: []call{
				{"autoscaling:UpdateAutoScalingGroup", "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e:autoScalingGroupName/api-blue"},
				{"ec2:CreateLaunchTemplateVersion", "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0abc"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := For(load(t, tt.rc), "")
			if p.Empty() != tt.empty {
				t.Fatalf("Empty() = %v, want %v", p.Empty(), tt.empty)
			}
			noWildcardActions(t, p)
			for _, d := range []struct {
				name           string
				doc            *Document
				allows, refuse []call
			}{{"operator", &p.Operator, tt.operatorAllows, tt.operatorRefuse}, {"instance", &p.Instance, tt.instanceAllows, tt.instanceRefuse}} {
				for _, c := range d.allows {
					if !d.doc.Allows(c.action, c.resource) {
						t.Errorf("%s policy refuses %s on %s", d.name, c.action, c.resource)
					}
				}
				for _, c := range d.refuse {
					if d.doc.Allows(c.action, c.resource) {
						t.Errorf("%s policy allows %s on %s", d.name, c.action, c.resource)
					}
				}
			}
		})
	}
}

// noWildcardActions fails t for an action with a wildcard, a statement
// on "*" that is not the one for calls without resource-level
// permissions, or unsorted actions.
func noWildcardActions(t *testing.T, p *Policies) {
	t.Helper()
	for _, d := range []Document{p.Operator, p.Instance} {
		if d.Version != Version {
			t.Errorf("Version %q", d.Version)
		}
		for _, s := range d.Statement {
			for i, a := range s.Action {
				if strings.ContainsAny(a, "*?") {
					t.Errorf("statement %s: wildcard action %q", s.Sid, a)
				}
				if i > 0 && s.Action[i-1] >= a {
					t.Errorf("statement %s: actions not sorted: %v", s.Sid, s.Action)
				}
			}
			for _, r := range s.Resource {
				if r == "*" && s.Sid != NoResourceLevelSid {
					t.Errorf("statement %s is on \"*\"", s.Sid)
				}
			}
		}
	}
}

// TestRegionFlagWins: --region names the ARNs' region over .oopsrc's.
func TestRegionFlagWins(t *testing.T) {
	c := load(t, `{"application-name": "api", "store": "rel", "elb-name": "web", "region": "eu-west-1"}`)
	p := For(c, "ap-south-1")
	if !p.Operator.Allows("elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:ap-south-1:1:loadbalancer/web") ||
		p.Operator.Allows("elasticloadbalancing:AddTags", "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/web") {
		b, _ := json.MarshalIndent(p.Operator, "", "  ")
		t.Errorf("region of the ARNs is not ap-south-1:\n%s", b)
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"a*", "a/b/c", true},
		{"a*c", "abc", true},
		{"a*c", "abd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"*", "", true},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// TestRoute53ChangeConditions: a switch may UPSERT dns-name's records and
// oops's TXT record, not delete them nor change other names of the zone.
func TestRoute53ChangeConditions(t *testing.T) {
	p := For(load(t, `{"application-name": "api", "store": "rel", "dns-name": "API.Example.com.", "hosted-zone-id": "Z0123456789ABCDEFGHIJ"}`), "")
	const action, zone = "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ"
	names, actions := "route53:ChangeResourceRecordSetsNormalizedRecordNames", "route53:ChangeResourceRecordSetsActions"
	tests := []struct {
		name string
		keys map[string][]string
		want bool
	}{
		{"a switch", map[string][]string{actions: {"UPSERT"}, names: {"api.example.com", "_oops.api.example.com"}}, true},
		{"another name", map[string][]string{actions: {"UPSERT"}, names: {"api.example.com", "www.example.com"}}, false},
		{"a delete", map[string][]string{actions: {"UPSERT", "DELETE"}, names: {"api.example.com"}}, false},
	}
	for _, tt := range tests {
		for _, d := range []Document{p.Operator, p.Instance} {
			if got := d.AllowsWith(action, zone, tt.keys); got != tt.want {
				t.Errorf("%s: AllowsWith = %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}
