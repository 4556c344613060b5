package elb_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// Backend-server policies (ProxyProtocol, backend authentication) are set
// per instance port: after a switch the new color's port must have them
// too, set before the listeners move, or an app that expects the PROXY
// header breaks on every request. status shows them.
func TestBackendPoliciesFollowTheSwitch(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{BackendPolicies: []string{"oops-proxy"}}, elb.Options{})
	if got := e.snap().Backends; !slices.Equal(got, []string{"8080:oops-proxy"}) {
		t.Fatalf("fixture backends %v", got)
	}
	st, err := e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Listeners, "\n"); !strings.Contains(got, "backend policies on blue (port 8080): oops-proxy") {
		t.Errorf("status does not show the backend policies:\n%s", got)
	}
	res, err := switchTo(e, target.SwitchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Plan.String(), "SetLoadBalancerPoliciesForBackendServer "+e.name+" InstancePort=8081 PolicyNames=oops-proxy") {
		t.Errorf("plan does not carry the policies:\n%s", res.Plan)
	}
	if got := e.snap().Backends; !slices.Equal(got, []string{"8080:oops-proxy", "8081:oops-proxy"}) {
		t.Errorf("backends after the switch %v, want the policy on both ports", got)
	}
	calls := e.mutating()
	if i, j := slices.Index(calls, "SetLoadBalancerPoliciesForBackendServer"), slices.Index(calls, "DeleteLoadBalancerListeners"); i < 0 || i > j {
		t.Errorf("backend policies not set before the listeners move: %v", calls)
	}
	if got := e.requireOneColor(); got != release.Green {
		t.Errorf("%s live", got)
	}
	// Back again: the policies are on 8080 already, no extra call.
	e.proxy.Clear()
	if _, err := switchTo(e, target.SwitchOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := e.proxy.Count("SetLoadBalancerPoliciesForBackendServer"); n != 0 {
		t.Errorf("%d backend-policy calls switching back, want 0", n)
	}
}

// When the policies cannot be set on the new port (no permission), the
// switch stops before any listener moves, and the error gives the exact
// command.
func TestBackendPoliciesThatCannotBeSetRefuse(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{BackendPolicies: []string{"oops-proxy"}}, elb.Options{})
	e.proxy.Add(faultproxy.Rule{Action: "SetLoadBalancerPoliciesForBackendServer", Status: 403, Body: faultproxy.QueryError("AccessDenied", "not authorized to perform: elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer")})
	_, err := switchTo(e, target.SwitchOptions{})
	if err == nil || errors.Is(err, target.ErrInconsistent) {
		t.Fatalf("Switch = %v, want a refusal, undone", err)
	}
	want := "aws elb set-load-balancer-policies-for-backend-server --load-balancer-name " + e.name + " --instance-port 8081 --policy-names oops-proxy"
	if !strings.Contains(err.Error()+"\n"+hintOf(err), want) {
		t.Errorf("error does not give the command %q:\n%v\n%s", want, err, hintOf(err))
	}
	if slices.Contains(e.mutating(), "DeleteLoadBalancerListeners") {
		t.Errorf("listeners moved: %v", e.mutating())
	}
	e.proxy.Clear()
	if got := e.requireOneColor(); got != release.Blue {
		t.Errorf("%s live, want blue", got)
	}
}
