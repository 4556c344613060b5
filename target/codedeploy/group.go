package codedeploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/target"
)

// ErrTrafficControl: the deployment group has a load balancer configured
// (traffic control). During an in-place deployment CodeDeploy then
// deregisters each instance from that load balancer; both colors run on
// the same instances, so a deploy to the off color would take the live
// color out of service. oops switches traffic itself and refuses such a
// group unless --force.
var ErrTrafficControl = errors.New("deployment group has traffic control")

// ErrGroupUnchecked: the deployment group could not be read (a missing
// permission, AWS not answering), so traffic control was not ruled out.
// --force goes on without the check: the risk it accepts anyway.
var ErrGroupUnchecked = errors.New("deployment group not checked")

// CheckGroup reads the deployment group (GetDeploymentGroup) and refuses,
// with the reason and the fix, one with traffic control or a load
// balancer configured. With a group per color (Groups) there is nothing
// to refuse: each group holds one color's instances, so taking them out
// of their load balancer during the install touches only the off color.
func (d *Deployer) CheckGroup(ctx context.Context) error {
	if d.Groups != nil {
		return nil
	}
	out, err := d.API.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{
		ApplicationName: aws.String(d.Application), DeploymentGroupName: aws.String(d.Group)})
	if err != nil {
		var noGroup *types.DeploymentGroupDoesNotExistException
		var noApp *types.ApplicationDoesNotExistException
		var ae smithy.APIError
		switch {
		case errors.As(err, &noGroup), errors.As(err, &noApp):
			// A typo in .oopsrc, not a permission: say where to fix it.
			return target.Hinted(fmt.Errorf("read deployment group %s/%s: %w", d.Application, d.Group, err),
				fmt.Sprintf("check application-name and deployment-group in .oopsrc; the groups there: aws deploy list-deployment-groups --application-name %s", d.Application))
		case errors.As(err, &ae) && strings.Contains(ae.ErrorCode(), "AccessDenied"):
			return target.Hinted(fmt.Errorf("%w: read deployment group %s/%s (needs codedeploy:GetDeploymentGroup): %w", ErrGroupUnchecked, d.Application, d.Group, err),
				"add codedeploy:GetDeploymentGroup to the role (see the README's permissions), or pass --force to deploy without the check")
		}
		return target.Hinted(fmt.Errorf("%w: read deployment group %s/%s: %w", ErrGroupUnchecked, d.Application, d.Group, err),
			"run the command again; --force deploys without the check")
	}
	g := out.DeploymentGroupInfo
	if g == nil {
		return nil
	}
	var why []string
	if g.DeploymentStyle != nil && g.DeploymentStyle.DeploymentOption == types.DeploymentOptionWithTrafficControl {
		why = append(why, "traffic control (WITH_TRAFFIC_CONTROL)")
	}
	if lb := loadBalancers(g.LoadBalancerInfo); len(lb) > 0 {
		why = append(why, strings.Join(lb, ", ")+" configured")
	}
	if len(why) == 0 {
		return nil
	}
	err = fmt.Errorf("%w: deployment group %s/%s has %s: during an in-place deployment CodeDeploy deregisters each instance from the load balancer, and both colors run on those instances, so deploying to the off color would take the live color out of service too",
		ErrTrafficControl, d.Application, d.Group, strings.Join(why, " and "))
	return target.Hinted(err, fmt.Sprintf("oops switches traffic itself: take the load balancer out of the group, then deploy again:\n"+
		"  aws deploy update-deployment-group --application-name %s --current-deployment-group-name %s --deployment-style deploymentType=IN_PLACE,deploymentOption=WITHOUT_TRAFFIC_CONTROL --load-balancer-info '{\"elbInfoList\":[],\"targetGroupInfoList\":[],\"targetGroupPairInfoList\":[]}'\n"+
		"or pass --force to deploy anyway", d.Application, d.Group))
}

func loadBalancers(lb *types.LoadBalancerInfo) []string {
	if lb == nil {
		return nil
	}
	var out []string
	for _, e := range lb.ElbInfoList {
		out = append(out, "load balancer "+aws.ToString(e.Name))
	}
	for _, tg := range lb.TargetGroupInfoList {
		out = append(out, "target group "+aws.ToString(tg.Name))
	}
	for _, p := range lb.TargetGroupPairInfoList {
		for _, tg := range p.TargetGroups {
			out = append(out, "target group "+aws.ToString(tg.Name))
		}
	}
	return out
}
