package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/iampolicy"
)

func TestIAMPolicyFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *IAMPolicyOptions) error) *cobra.Command {
		return newIAMPolicyCmd(flagFactory(), runF)
	}, []flagCase[IAMPolicyOptions]{
		{args: []string{"iam-policy"}, want: IAMPolicyOptions{}},
		{args: []string{"iam-policy", "--json"}, want: IAMPolicyOptions{JSON: true}},
		{args: []string{"iam-policy", "--instance"}, usage: "unknown flag: --instance"},
		{args: []string{"iam-policy", "operator"}, usage: `oops iam-policy takes no arguments, got "operator"`},
	})
}

// TestIAMPolicyRun: what a user reads from oops iam-policy for an AWS
// .oopsrc (both policies, how to attach them), as JSON (the two
// documents, usable as they are), and for a .oopsrc that uses no AWS.
func TestIAMPolicyRun(t *testing.T) {
	const awsRC = `{"application-name": "api", "store": "s3://bkt/team", "elb-name": "web", "deployment-group": "dg", "region": "eu-west-1"}`
	run := func(t *testing.T, rc string, args ...string) string {
		t.Helper()
		f, _, _ := testFactory(t, rc)
		if code := Main(f, append([]string{"iam-policy"}, args...)); code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		return f.IO.Out.(*bytes.Buffer).String()
	}
	t.Run("text", func(t *testing.T) {
		out := run(t, awsRC)
		for _, want := range []string{"Operator policy", "Instance policy", `"arn:aws:s3:::bkt/team/api/*"`,
			`"arn:aws:elasticloadbalancing:eu-west-1:*:loadbalancer/web"`, `"codedeploy:CreateDeployment"`, "aws iam put-role-policy"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		var got struct{ Operator, Instance iampolicy.Document }
		if err := json.Unmarshal([]byte(run(t, awsRC, "--json")), &got); err != nil {
			t.Fatal(err)
		}
		if !got.Operator.Allows("codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:1:deploymentgroup:api/dg") {
			t.Errorf("operator policy cannot deploy: %+v", got.Operator)
		}
		if got.Instance.Allows("codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:1:deploymentgroup:api/dg") ||
			!got.Instance.Allows("codedeploy:GetDeployment", "arn:aws:codedeploy:eu-west-1:1:deploymentgroup:api/dg") {
			t.Errorf("instance policy: %+v", got.Instance)
		}
	})
	t.Run("--region", func(t *testing.T) {
		if out := run(t, awsRC, "--region", "ap-south-1"); !strings.Contains(out, ":ap-south-1:*:loadbalancer/web") {
			t.Errorf("--region does not name the ARNs' region:\n%s", out)
		}
	})
	t.Run("no AWS", func(t *testing.T) {
		if out := run(t, `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"]}`); !strings.Contains(out, "needs no AWS permissions") {
			t.Errorf("output: %s", out)
		}
	})
}
