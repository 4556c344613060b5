package elb

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"

	"github.com/oops-deploy/oops/release"
)

// backendCall is the SetLoadBalancerPoliciesForBackendServer that gives
// color to's instance port the backend-server policies of the other
// color's port; false when they are there already (or there are none:
// policies on the new port alone are left as they are).
func (t *Target) backendCall(o *observation, to release.Color) (call, bool) {
	from, port := o.ports[to.Other()], o.ports[to]
	want := o.backends[from]
	if len(want) == 0 || slices.Equal(o.backends[port], want) {
		return call{}, false
	}
	names := strings.Join(want, ",")
	return call{
		op:   "SetLoadBalancerPoliciesForBackendServer",
		text: fmt.Sprintf("SetLoadBalancerPoliciesForBackendServer %s InstancePort=%d PolicyNames=%s  (as on port %d: the new color must get them too)", t.name, port, names, from),
		fix: fmt.Sprintf("aws elb set-load-balancer-policies-for-backend-server --load-balancer-name %s --instance-port %d --policy-names %s",
			t.name, port, strings.Join(want, " ")),
		run: func(ctx context.Context) error {
			_, err := t.api.SetLoadBalancerPoliciesForBackendServer(ctx, &elbsdk.SetLoadBalancerPoliciesForBackendServerInput{
				LoadBalancerName: aws.String(t.name), InstancePort: aws.Int32(port), PolicyNames: want})
			return err
		},
	}, true
}
