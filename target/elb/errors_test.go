package elb_test

import (
	"errors"
	"strings"
	"testing"

	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// AWS errors become one line naming the ELB and what is missing, still
// recognisable as AWS errors, and leave nothing half-changed.
func TestAWSErrorsAreExplained(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rule   faultproxy.Rule
		want   []string
		before bool // the failure comes before any change
		// repair: the switch is left for oops repair, which finishes it
		// toward this color once the fault is gone.
		repair release.Color
	}{
		{
			name: "access denied",
			rule: faultproxy.Rule{Action: "DeleteLoadBalancerListeners", Status: 403, Body: faultproxy.QueryError("AccessDenied",
				"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticloadbalancing:DeleteLoadBalancerListeners")},
			want: []string{"DeleteLoadBalancerListeners: access denied", "needs the permission elasticloadbalancing:DeleteLoadBalancerListeners", "user/ci", "undone: blue is live again"},
		},
		{
			name:   "throttling",
			rule:   faultproxy.Rule{Action: "DescribeLoadBalancers", Status: 400, Body: faultproxy.QueryError("Throttling", "Rate exceeded")},
			want:   []string{"DescribeLoadBalancers: AWS is throttling requests", "run the command again"},
			before: true,
		},
		{
			// After the delete, recovery goes forward (re-creating on the
			// old port needs the same certificate): it fails too, and says
			// to repair once the certificate is back.
			name:   "certificate gone",
			rule:   faultproxy.Rule{Action: "CreateLoadBalancerListeners", Status: 400, Body: faultproxy.QueryError("CertificateNotFound", "Server Certificate not found")},
			want:   []string{"SSL certificate was not found", "finishing it failed too"},
			before: false,
			repair: release.Green,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, elbtest.Fixture{}, elb.Options{})
			e.proxy.Add(tt.rule)
			_, err := switchTo(e, target.SwitchOptions{})
			if err == nil {
				t.Fatal("switch succeeded")
			}
			msg := err.Error()
			t.Logf("%s", msg)
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			if !strings.Contains(msg, "classic ELB "+e.name) {
				t.Errorf("error does not name the ELB: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Errorf("the AWS error is not wrapped (exit code): %v", err)
			}
			if errors.Is(err, target.ErrInconsistent) != (tt.repair != "") {
				t.Errorf("inconsistent: %v, want %v", err, tt.repair != "")
			}
			if tt.before && len(e.mutating()) != 0 {
				t.Errorf("changes made before the failure: %v", e.mutating())
			}
			e.proxy.Clear()
			want := release.Blue
			if tt.repair != "" {
				if _, err := e.tgt.Repair(e.ctx); err != nil {
					t.Fatal(err)
				}
				want = tt.repair
			}
			if got := e.requireOneColor(); got != want {
				t.Errorf("%s live, want %s", got, want)
			}
		})
	}
}

func TestUnknownELB(t *testing.T) {
	t.Parallel()
	if moto == nil {
		awstest.Unavailable(t, motoErr)
	}
	tg := elb.New(elbsdk.NewFromConfig(awstest.Config(moto.URL)), "no-such-elb", elb.Options{Region: "us-east-1"})
	_, err := tg.State(awstest.Ctx(t))
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) || !strings.Contains(err.Error(), "classic ELB no-such-elb not found in region us-east-1: check elb-name in .oopsrc") {
		t.Errorf("State = %v", err)
	}
}
