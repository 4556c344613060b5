// Package iampolicy writes the least-privilege IAM policies for an
// .oopsrc: what an operator (a person or CI running publish, deploy,
// rollback ...) needs, and what the instances need for `oops hook`. It is
// a pure function of the configuration: the actions are the AWS calls the
// backends make (store/s3, target/elb, target/alb, target/dns,
// target/codedeploy, SNS notifications, STS), the resources the bucket,
// prefix, load balancers, hosted zone, CodeDeploy groups and SNS topics
// the configuration names.
package iampolicy

import (
	"slices"
	"strings"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target/dns"
)

// Version is the IAM policy language version.
const Version = "2012-10-17"

// Document is an IAM policy document, ready for aws iam put-role-policy.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one Allow statement. IAM documents have no comment field:
// the Sid says why a statement is there (notably the ones on "*").
type Statement struct {
	Sid      string   `json:"Sid"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
	// Condition narrows a statement further: operator -> condition key
	// -> values. oops writes only ForAllValues:StringEquals.
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// forAll is the condition operator of the statements oops writes: every
// value of the request's key must be listed (a request without the key
// matches, as in IAM).
const forAll = "ForAllValues:StringEquals"

// Policies are the two policies of one .oopsrc. Notes say, in words, what
// the documents cannot (why some statements use "*", what else a role
// needs).
type Policies struct {
	Operator Document `json:"operator"`
	Instance Document `json:"instance"`
	Notes    []string `json:"notes,omitempty"`
}

// Empty reports whether the configuration needs no AWS permissions (a
// directory store and the local target).
func (p *Policies) Empty() bool {
	return len(p.Operator.Statement) == 0 && len(p.Instance.Statement) == 0
}

// NoResourceLevelSid names the statement of the actions AWS does not
// authorize per resource: they can only be granted on "*".
const NoResourceLevelSid = "ReadOnlyCallsWithoutResourceLevelPermissions"

// For returns the policies for c. region is the region oops runs in (from
// --region or .oopsrc); "" matches any region. The account is not in
// .oopsrc: ARNs match any account ("*"), which in an account's own policy
// still means that account's resources.
func For(c *config.Config, region string) *Policies {
	if region == "" {
		region = c.Region
	}
	if region == "" {
		region = "*"
	}
	b := &builder{c: c, region: region}
	b.store()
	b.target()
	b.codeDeploy()
	b.notify()
	b.caller()
	return &Policies{
		Operator: b.operator.document(),
		Instance: b.instance.document(),
		Notes:    b.notes,
	}
}

type builder struct {
	c                  *config.Config
	region             string
	operator, instance statements
	notes              []string
	aws                bool // some AWS call is made
}

func (b *builder) both(s Statement) {
	b.operator.add(s)
	b.instance.add(s)
}

// store grants the S3 calls of store/s3 on the objects under the
// application's folder of the store's prefix: every key oops reads or
// writes is <prefix>/<application>/... (releases, and .oops/ for the
// index, lock, history and hook markers).
func (b *builder) store() {
	bucket, prefix, ok := s3Location(b.c.StoreURL())
	if !ok {
		return
	}
	b.aws = true
	app := prefix + b.c.ApplicationName + "/"
	meta := app + store.MetaDir + "/"
	bucketARN := "arn:aws:s3:::" + bucket
	objects := bucketARN + "/" + app + "*"
	// Listing is granted on the whole bucket, with no s3:prefix
	// condition: S3 answers a read of a missing object (the index of a new
	// store, a free lock, a hook's marker) 404 only to a caller that may
	// list the bucket, and 403 otherwise, which oops cannot tell from a
	// refusal. Only key names are listed; objects stay out of reach.
	b.both(Statement{
		Sid:      "ListTheBucketSoMissingObjectsAnswer404",
		Action:   []string{"s3:ListBucket"},
		Resource: []string{bucketARN},
	})
	// fsck finds the multipart uploads a killed publish left; S3 has no
	// prefix condition for this listing, so it is the whole bucket's.
	b.operator.add(Statement{
		Sid:      "FindUnfinishedUploads",
		Action:   []string{"s3:ListBucketMultipartUploads"},
		Resource: []string{bucketARN},
	})
	b.operator.add(Statement{
		Sid:      "ReadAndWriteTheApplicationsReleases",
		Action:   []string{"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"},
		Resource: []string{objects},
	})
	// The instances read release bundles (the CodeDeploy agent fetches
	// them with the instance profile) and the bookkeeping; `oops hook
	// switch` writes only the bookkeeping (lock, history, hook markers).
	b.instance.add(Statement{
		Sid:      "ReadTheApplicationsReleases",
		Action:   []string{"s3:GetObject"},
		Resource: []string{objects},
	})
	b.instance.add(Statement{
		Sid:      "WriteTheApplicationsBookkeeping",
		Action:   []string{"s3:PutObject"},
		Resource: []string{bucketARN + "/" + meta + "*"},
	})
	b.notes = append(b.notes, "If the bucket encrypts with a customer-managed KMS key, both roles also need kms:Decrypt and kms:GenerateDataKey on that key.")
}

// s3Location splits an s3://bucket/prefix store URL; the prefix is "" or
// ends in "/", as store/s3 uses it.
func s3Location(u string) (bucket, prefix string, ok bool) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", false
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	return bucket, prefix, true
}

func (b *builder) arn(service, resource string) string {
	return "arn:aws:" + service + ":" + b.region + ":*:" + resource
}

// noResourceLevel grants actions AWS only authorizes on "*".
func (b *builder) noResourceLevel(operator, instance bool, actions ...string) {
	s := Statement{Sid: NoResourceLevelSid, Action: actions, Resource: []string{"*"}}
	if operator {
		b.operator.add(s)
	}
	if instance {
		b.instance.add(s)
	}
}

// target grants the load balancer calls. Both roles switch: the operator
// with rollback/deploy/shift, the instances with `oops hook switch`.
func (b *builder) target() {
	switch b.c.TargetKind() {
	case "elb":
		b.aws = true
		b.noResourceLevel(true, true, "elasticloadbalancing:DescribeInstanceHealth",
			"elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTags")
		switchELB := []string{
			"elasticloadbalancing:AddTags", "elasticloadbalancing:ConfigureHealthCheck",
			"elasticloadbalancing:CreateLoadBalancerListeners", "elasticloadbalancing:DeleteLoadBalancerListeners",
			"elasticloadbalancing:RemoveTags", "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
			"elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
		}
		main := b.arn("elasticloadbalancing", "loadbalancer/"+b.c.ELBName)
		b.both(Statement{Sid: "SwitchTheClassicELB", Action: switchELB, Resource: []string{main}})
		if b.c.PreviewELBName != "" {
			// oops off points the preview ELB at the off color; hooks never do.
			b.operator.add(Statement{Sid: "SwitchThePreviewELB", Action: switchELB,
				Resource: []string{b.arn("elasticloadbalancing", "loadbalancer/"+b.c.PreviewELBName)}})
		}
		if strings.Contains(b.c.HealthCheckURL, "{ip}") {
			b.noResourceLevel(true, true, "ec2:DescribeInstances")
		}
	case "alb":
		b.aws = true
		b.noResourceLevel(true, true, "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancers",
			"elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTags",
			"elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth")
		listeners, rules := b.albListeners()
		b.both(Statement{Sid: "SwitchTheALBsListeners", Action: []string{"elasticloadbalancing:ModifyListener"}, Resource: listeners})
		b.both(Statement{Sid: "SwitchTheALBsRules", Action: []string{"elasticloadbalancing:ModifyRule"}, Resource: rules})
		// The colors' commits, canary base and stickiness are tags on
		// the two target groups.
		b.both(Statement{Sid: "TagTheColorsTargetGroups", Action: []string{"elasticloadbalancing:AddTags"}, Resource: b.targetGroups()})
		if b.c.UsesASG() {
			b.asg()
		}
	case "dns":
		b.aws = true
		b.route53()
	}
}

// asg grants the calls of target/asg (the ALB's colors are auto-scaling
// groups): the operator sizes the groups and gives them a launch template
// version per release; the instances read their commit from their tags
// or launch template version (oops hook fetch).
func (b *builder) asg() {
	b.noResourceLevel(true, true, "autoscaling:DescribeAutoScalingGroups", "ec2:DescribeLaunchTemplateVersions")
	b.noResourceLevel(false, true, "ec2:DescribeTags")
	var groups []string
	for _, g := range []string{b.c.BlueASG, b.c.GreenASG} {
		if g == "" || b.c.ASGByTag {
			// Found by their oops:color tag: any group may be one.
			groups = []string{b.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*")}
			break
		}
		groups = append(groups, b.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/"+g))
	}
	b.operator.add(Statement{
		Sid:      "SizeTheColorsGroups",
		Action:   []string{"autoscaling:TerminateInstanceInAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup"},
		Resource: groups,
	})
	// The groups' launch templates are named only in AWS, not in .oopsrc.
	b.operator.add(Statement{
		Sid:      "AddLaunchTemplateVersions",
		Action:   []string{"ec2:CreateLaunchTemplateVersion"},
		Resource: []string{b.arn("ec2", "launch-template/*")},
	})
	b.notes = append(b.notes, "Setting a group's launch template version also needs the permissions to launch from it (ec2:RunInstances on its resources, iam:PassRole for its instance profile): AWS checks them on UpdateAutoScalingGroup.")
}

// route53 grants the calls of target/dns: read and change the records of
// the hosted zone (the colors' weighted records and oops's TXT record
// _oops.<dns-name>), wait for a change to be INSYNC, and read the
// records' health checks. Route 53 ARNs have no region or account.
func (b *builder) route53() {
	zone := "arn:aws:route53:::hostedzone/*"
	if id := b.c.HostedZoneID; id != "" {
		zone = "arn:aws:route53:::hostedzone/" + id
	} else {
		// Without hosted-zone-id oops finds the zone from dns-name; this
		// listing has no resource-level permission.
		b.noResourceLevel(true, true, "route53:ListHostedZonesByName")
		b.notes = append(b.notes, "Without hosted-zone-id in .oopsrc the policies allow changing the records of dns-name in any hosted zone (oops finds the zone from dns-name): set hosted-zone-id to narrow them to that zone.")
	}
	b.both(Statement{Sid: "ReadTheRecords", Action: []string{"route53:ListResourceRecordSets"}, Resource: []string{zone}})
	// A switch only UPSERTs the colors' records of dns-name and oops's
	// TXT record; Route 53 compares names lowercase, without the final dot.
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(b.c.DNSName), "."))
	b.both(Statement{
		Sid:      "SwitchTheWeightedRecords",
		Action:   []string{"route53:ChangeResourceRecordSets"},
		Resource: []string{zone},
		Condition: map[string]map[string][]string{forAll: {
			"route53:ChangeResourceRecordSetsActions":               {"UPSERT"},
			"route53:ChangeResourceRecordSetsNormalizedRecordNames": {name, strings.TrimSuffix(dns.MetaPrefix, ".") + "." + name},
		}},
	})
	// A change's id is only known once it is made.
	b.both(Statement{Sid: "WaitForChangesToBeInSync", Action: []string{"route53:GetChange"}, Resource: []string{"arn:aws:route53:::change/*"}})
	// Which health checks the records carry is only known by reading them.
	b.both(Statement{Sid: "ReadTheRecordsHealthChecks", Action: []string{"route53:GetHealthCheckStatus"}, Resource: []string{"arn:aws:route53:::healthcheck/*"}})
	if len(b.c.DeployCommand) > 0 {
		b.notes = append(b.notes, "deploy-command runs with the operator's credentials: what it calls needs its own permissions, beside these.")
	}
}

// albListeners are the listener and listener-rule ARNs oops switches:
// listener-arn's own, else every listener of alb-name.
func (b *builder) albListeners() (listeners, rules []string) {
	if l := b.c.ListenerARN; l != "" {
		// arn:aws:elasticloadbalancing:R:A:listener/app/NAME/LB/ID
		if head, res, ok := strings.Cut(l, ":listener/"); ok {
			return []string{l}, []string{head + ":listener-rule/" + res + "/*"}
		}
		return []string{l}, []string{b.arn("elasticloadbalancing", "listener-rule/app/*")}
	}
	name := b.c.ALBName
	return []string{b.arn("elasticloadbalancing", "listener/app/"+name+"/*")},
		[]string{b.arn("elasticloadbalancing", "listener-rule/app/"+name+"/*")}
}

// targetGroups are the colors' target groups: those .oopsrc names (name
// or ARN); else oops finds them by tag, and any target group may be one.
func (b *builder) targetGroups() []string {
	var out []string
	for _, g := range []string{b.c.BlueTargetGroup, b.c.GreenTargetGroup} {
		switch {
		case g == "":
			return []string{b.arn("elasticloadbalancing", "targetgroup/*")}
		case strings.HasPrefix(g, "arn:"):
			out = append(out, g)
		default:
			out = append(out, b.arn("elasticloadbalancing", "targetgroup/"+g+"/*"))
		}
	}
	return out
}

// codeDeployGroups are the CodeDeploy groups releases go to: the load
// balancer's deployment-group, or the dns target's group per color
// (as backend decides whether CodeDeploy is used).
func (b *builder) codeDeployGroups() []string {
	switch k := b.c.TargetKind(); {
	case (k == "elb" || k == "alb") && b.c.DeploymentGroup != "":
		return []string{b.c.DeploymentGroup}
	case (k == "dns" || k == "alb") && b.c.BlueDeploymentGroup != "":
		return []string{b.c.BlueDeploymentGroup, b.c.GreenDeploymentGroup}
	}
	return nil
}

// codeDeploy grants the CodeDeploy calls when releases reach the
// instances through CodeDeploy.
func (b *builder) codeDeploy() {
	names := b.codeDeployGroups()
	if len(names) == 0 {
		return
	}
	b.aws = true
	var groups []string
	for _, g := range names {
		groups = append(groups, b.arn("codedeploy", "deploymentgroup:"+b.c.ApplicationName+"/"+g))
	}
	b.operator.add(Statement{
		Sid: "DeployToTheGroup",
		Action: []string{"codedeploy:CreateDeployment", "codedeploy:GetDeployment",
			"codedeploy:GetDeploymentGroup", "codedeploy:StopDeployment"},
		Resource: groups,
	})
	// Which instances failed a deployment: AWS authorizes these reads of
	// a deployment's targets only on "*".
	b.noResourceLevel(true, false, "codedeploy:BatchGetDeploymentTargets", "codedeploy:ListDeploymentTargets")
	// CreateDeployment also checks the deployment configuration and
	// registers the revision with the application.
	b.operator.add(Statement{
		Sid:      "CreateDeploymentsOfTheApplication",
		Action:   []string{"codedeploy:GetApplicationRevision", "codedeploy:RegisterApplicationRevision"},
		Resource: []string{b.arn("codedeploy", "application:"+b.c.ApplicationName)},
	})
	b.operator.add(Statement{
		Sid:      "ReadDeploymentConfigs",
		Action:   []string{"codedeploy:GetDeploymentConfig"},
		Resource: []string{b.arn("codedeploy", "deploymentconfig:*")},
	})
	// The hooks read which commit their deployment installs.
	b.instance.add(Statement{Sid: "ReadTheGroupsDeployments", Action: []string{"codedeploy:GetDeployment"}, Resource: groups})
	b.notes = append(b.notes, "The CodeDeploy agent on the instances needs its own permissions too (AWS documents them for the instance profile); the instance policy above covers oops and the release bundles.")
}

// notify grants publishing to the SNS topics of notify ("sns:<arn>"):
// every command that records an event notifies, `oops hook switch` on
// the instances too. Webhooks need no AWS permission.
func (b *builder) notify() {
	var topics []string
	for _, d := range b.c.Values.Notify {
		if d.TopicARN != "" && !slices.Contains(topics, d.TopicARN) {
			topics = append(topics, d.TopicARN)
		}
	}
	if len(topics) == 0 {
		return
	}
	b.aws = true
	b.both(Statement{Sid: "NotifyTheSNSTopics", Action: []string{"sns:Publish"}, Resource: topics})
	b.notes = append(b.notes, "If an SNS topic encrypts with a customer-managed KMS key, both roles also need kms:Decrypt and kms:GenerateDataKey on that key.")
}

// caller: history names whoever runs a change (sts:GetCallerIdentity,
// which AWS allows without any permission; listed so that it is said).
func (b *builder) caller() {
	if !b.aws {
		return
	}
	b.noResourceLevel(true, true, "sts:GetCallerIdentity")
	b.notes = append(b.notes, `The "`+NoResourceLevelSid+`" statement is on "*" because AWS does not authorize those read-only calls per resource (Describe* of Elastic Load Balancing and Auto Scaling, ec2:DescribeInstances, ec2:DescribeTags, ec2:DescribeLaunchTemplateVersions, route53:ListHostedZonesByName, the deployment-target reads of CodeDeploy, sts:GetCallerIdentity).`)
}

// statements collects statements, merging those with the same Sid.
type statements []Statement

func (ss *statements) add(s Statement) {
	for i := range *ss {
		if (*ss)[i].Sid == s.Sid {
			(*ss)[i].Action = append((*ss)[i].Action, s.Action...)
			return
		}
	}
	s.Action = slices.Clone(s.Action)
	*ss = append(*ss, s)
}

func (ss statements) document() Document {
	d := Document{Version: Version, Statement: []Statement{}}
	for _, s := range ss {
		s.Effect = "Allow"
		slices.Sort(s.Action)
		s.Action = slices.Compact(s.Action)
		d.Statement = append(d.Statement, s)
	}
	return d
}

// Allows reports whether d allows action on resource, with IAM's
// matching: actions compare case-insensitively, resources with * and ?
// globs. Conditions are not checked (see AllowsWith).
func (d *Document) Allows(action, resource string) bool {
	return d.AllowsWith(action, resource, nil)
}

// AllowsWith is Allows for a request whose condition keys have the values
// in keys: a statement's ForAllValues:StringEquals conditions must hold
// for them (a key the request lacks matches, as in IAM); any other
// condition operator does not match.
func (d *Document) AllowsWith(action, resource string, keys map[string][]string) bool {
	for _, s := range d.Statement {
		if s.Effect == "Allow" &&
			slices.ContainsFunc(s.Action, func(a string) bool { return strings.EqualFold(a, action) }) &&
			slices.ContainsFunc(s.Resource, func(r string) bool { return globMatch(r, resource) }) &&
			conditionsHold(s.Condition, keys) {
			return true
		}
	}
	return false
}

func conditionsHold(cond map[string]map[string][]string, keys map[string][]string) bool {
	for op, byKey := range cond {
		if op != forAll {
			return false
		}
		for k, allowed := range byKey {
			for _, v := range keys[k] {
				if !slices.Contains(allowed, v) {
					return false
				}
			}
		}
	}
	return true
}

// globMatch is IAM's wildcard match: * any run of characters (slashes
// too), ? one character.
func globMatch(pattern, s string) bool {
	// Unlike path.Match, * crosses "/", as in IAM.
	star := strings.Index(pattern, "*")
	if star < 0 {
		return len(pattern) == len(s) && questionMatch(pattern, s)
	}
	if len(s) < star || !questionMatch(pattern[:star], s[:star]) {
		return false
	}
	rest := pattern[star+1:]
	for i := star; i <= len(s); i++ {
		if globMatch(rest, s[i:]) {
			return true
		}
	}
	return false
}

func questionMatch(pattern, s string) bool {
	for i := range len(pattern) {
		if pattern[i] != '?' && pattern[i] != s[i] {
			return false
		}
	}
	return true
}
