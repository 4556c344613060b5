package alb

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/oops-deploy/oops/release"
)

// withMix must keep every action around the forward: an OIDC login in
// front of it keeps its (never described) client secret.
func TestWithMixKeepsOtherActions(t *testing.T) {
	groups := map[release.Color]*group{release.Blue: {arn: "arn:b"}, release.Green: {arn: "arn:g"}}
	oidc := &types.AuthenticateOidcActionConfig{ClientId: aws.String("client"), Issuer: aws.String("https://idp")}
	it := &item{fwd: 1, actions: []types.Action{
		{Type: types.ActionTypeEnumAuthenticateOidc, Order: aws.Int32(1), AuthenticateOidcConfig: oidc},
		{Type: types.ActionTypeEnumForward, Order: aws.Int32(2), TargetGroupArn: aws.String("arn:b")},
	}}
	out := withMix(it, mixFor(release.Green, 10), groups, nil)
	if len(out) != 2 || out[0].Type != types.ActionTypeEnumAuthenticateOidc || aws.ToInt32(out[0].Order) != 1 {
		t.Fatalf("actions %+v", out)
	}
	if c := out[0].AuthenticateOidcConfig; aws.ToString(c.ClientId) != "client" || !aws.ToBool(c.UseExistingClientSecret) {
		t.Errorf("oidc config %+v: the existing client secret would be lost", c)
	}
	if oidc.UseExistingClientSecret != nil {
		t.Error("withMix changed the snapshot it read from")
	}
	f := out[1]
	if aws.ToInt32(f.Order) != 2 || f.TargetGroupArn != nil || f.ForwardConfig == nil {
		t.Fatalf("forward %+v", f)
	}
	got := map[string]int32{}
	for _, tg := range f.ForwardConfig.TargetGroups {
		got[aws.ToString(tg.TargetGroupArn)] = aws.ToInt32(tg.Weight)
	}
	if got["arn:b"] != 90 || got["arn:g"] != 10 || len(got) != 2 {
		t.Errorf("weights %v, want blue 90 green 10", got)
	}
}

func TestParseARNs(t *testing.T) {
	lb, id, ok := parseListenerARN("arn:aws:elasticloadbalancing:us-east-1:123:listener/app/my-alb/50dc6c495c0c9188/f2f7dc8efc522ab2")
	if !ok || lb != "my-alb" || id != "f2f7dc8efc522ab2" {
		t.Errorf("listener ARN: %q %q %v", lb, id, ok)
	}
	for _, bad := range []string{"", "my-alb", "arn:aws:elasticloadbalancing:us-east-1:123:listener/net/n/1/2", "arn:aws:elasticloadbalancing:us-east-1:123:listener/app/a/1"} {
		if _, _, ok := parseListenerARN(bad); ok {
			t.Errorf("parseListenerARN(%q) accepted", bad)
		}
	}
	if n := tgName("arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/web-blue/73e2d6bc24d8a067"); n != "web-blue" {
		t.Errorf("tgName = %q", n)
	}
}
