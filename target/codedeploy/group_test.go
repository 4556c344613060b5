package codedeploy

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/oops-deploy/oops/internal/awstest"
)

// A deployment group with traffic control (a load balancer configured)
// deregisters its instances from the load balancer during an in-place
// deployment: both colors live on those instances, so a deploy to the off
// color would take the live one out of service. oops refuses before
// creating a deployment, with the reason and the fix.
func TestGroupWithTrafficControlIsRefused(t *testing.T) {
	t.Parallel()
	m := needMoto(t)
	tests := []struct {
		name    string
		style   *types.DeploymentStyle
		lb      *types.LoadBalancerInfo
		refused []string // what the refusal says; nil: accepted
	}{
		{name: "plain in-place group"},
		{name: "without traffic control", style: &types.DeploymentStyle{DeploymentOption: types.DeploymentOptionWithoutTrafficControl, DeploymentType: types.DeploymentTypeInPlace}},
		{name: "with traffic control and an ELB",
			style:   &types.DeploymentStyle{DeploymentOption: types.DeploymentOptionWithTrafficControl, DeploymentType: types.DeploymentTypeInPlace},
			lb:      &types.LoadBalancerInfo{ElbInfoList: []types.ELBInfo{{Name: aws.String("web")}}},
			refused: []string{"traffic control (WITH_TRAFFIC_CONTROL)", "load balancer web", "both colors", "--deployment-style deploymentType=IN_PLACE,deploymentOption=WITHOUT_TRAFFIC_CONTROL", "--force"}},
		{name: "a target group configured",
			lb:      &types.LoadBalancerInfo{TargetGroupInfoList: []types.TargetGroupInfo{{Name: aws.String("web-blue")}}},
			refused: []string{"target group web-blue", "--force"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, m)
			cd := codedeploy.NewFromConfig(m.Config())
			group := "tc"
			if _, err := cd.CreateDeploymentGroup(awstest.Ctx(t), &codedeploy.CreateDeploymentGroupInput{
				ApplicationName: aws.String(fx.app), DeploymentGroupName: aws.String(group),
				ServiceRoleArn:  aws.String("arn:aws:iam::123456789012:role/codedeploy"),
				DeploymentStyle: tt.style, LoadBalancerInfo: tt.lb,
			}); err != nil {
				t.Fatal(err)
			}
			d := &Deployer{API: cd, Application: fx.app, Group: group, Bucket: fx.bucket}
			err := d.CheckGroup(awstest.Ctx(t))
			if tt.refused == nil {
				if err != nil {
					t.Fatalf("CheckGroup = %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, ErrTrafficControl) {
				t.Fatalf("CheckGroup = %v, want ErrTrafficControl", err)
			}
			var h interface{ Hint() string }
			if !errors.As(err, &h) {
				t.Fatalf("no fix given with %v", err)
			}
			for _, w := range tt.refused {
				if !strings.Contains(err.Error()+"\n"+h.Hint(), w) {
					t.Errorf("refusal does not say %q:\n%v", w, err)
				}
			}
			if got := listDeployments(t, m, fx.app, group); len(got) != 0 {
				t.Errorf("deployments = %v, want none", got)
			}
		})
	}
}

// A group that does not exist (a typo in deployment-group) is said as
// such, with where to fix it, not blamed on a missing permission.
func TestCheckGroupMissingGroup(t *testing.T) {
	t.Parallel()
	m := needMoto(t)
	fx := newFixture(t, m)
	d := &Deployer{API: codedeploy.NewFromConfig(m.Config()), Application: fx.app, Group: "no-such-group", Bucket: fx.bucket}
	err := d.CheckGroup(awstest.Ctx(t))
	if err == nil {
		t.Fatal("CheckGroup of a missing group = nil")
	}
	var h interface{ Hint() string }
	if !errors.As(err, &h) || !strings.Contains(h.Hint(), "deployment-group") {
		t.Errorf("no fix naming deployment-group in .oopsrc: %v", err)
	}
	if strings.Contains(err.Error(), "needs codedeploy:GetDeploymentGroup") {
		t.Errorf("a missing group is blamed on a permission: %v", err)
	}
	if !strings.Contains(err.Error(), "no-such-group") {
		t.Errorf("error does not name the group: %v", err)
	}
}
