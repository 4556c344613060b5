package alb

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// TagInstalling records, on a color's target group, the commit being
// installed there that has not passed its health check yet ("" once
// SetCommit recorded it).
const TagInstalling = "oops:installing"

var _ target.InstallRecorder = (*Target)(nil)

// SetInstalling marks color c as installing commit, or clears the mark
// with "" (see target.InstallRecorder): one AddTags call on c's target
// group.
func (t *Target) SetInstalling(ctx context.Context, c release.Color, commit string) error {
	g, err := t.group(ctx, c)
	if err != nil {
		return err
	}
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	if _, err := t.api.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{g.arn}, Tags: tags(TagInstalling, commit)}); err != nil {
		return t.explain("AddTags", g.name, err)
	}
	t.mu.Lock()
	t.last = nil
	t.mu.Unlock()
	return nil
}

// TargetHealth reads color c's targets, instance id -> health state
// ("healthy", "initial", ...): what a deploy onto an auto-scaling group
// waits on, per instance (target/asg).
func (t *Target) TargetHealth(ctx context.Context, c release.Color) (map[string]string, error) {
	g, err := t.group(ctx, c)
	if err != nil {
		return nil, err
	}
	h, err := t.health(ctx, g)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(h.instances))
	for _, in := range h.instances {
		id, _, _ := strings.Cut(in.ID, ":") // "i-123:8080"
		out[id] = in.State
	}
	return out, nil
}

// TargetGroup names color c's target group and its port (the port its
// targets are registered on by default, which CodeDeploy hooks serve):
// one DescribeTargetGroups call, which a switch never makes.
func (t *Target) TargetGroup(ctx context.Context, c release.Color) (name string, port int, err error) {
	g, err := t.group(ctx, c)
	if err != nil {
		return "", 0, err
	}
	out, err := t.api.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{g.arn}})
	if err != nil {
		return g.name, 0, t.explain("DescribeTargetGroups", g.name, err)
	}
	for _, tg := range out.TargetGroups {
		if p := aws.ToInt32(tg.Port); p > 0 {
			return g.name, int(p), nil
		}
	}
	return g.name, 0, fmt.Errorf("%w: target group %s has no port", target.ErrMisconfigured, g.name)
}

// TargetGroupARN is color c's target group ARN, from the last read (or
// read now): what target/asg checks each color's group is attached to.
func (t *Target) TargetGroupARN(ctx context.Context, c release.Color) (string, error) {
	g, err := t.group(ctx, c)
	if err != nil {
		return "", err
	}
	return g.arn, nil
}
