package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/iampolicy"
	"github.com/oops-deploy/oops/internal/iostreams"
)

// IAMPolicyOptions are what `oops iam-policy` runs with: its flag, and
// the dependencies the run takes from the Factory (bound in
// newIAMPolicyCmd, replaced in tests).
type IAMPolicyOptions struct {
	IO     *IOStreams
	Config func() (*config.Config, error)
	// Region is --region, read when the command runs (after the flags).
	Region func() string

	JSON   bool
	Export iostreams.Exporter
}

// newIAMPolicyCmd builds `oops iam-policy`; runF replaces the run in flag
// tests (nil: iamPolicyRun).
func newIAMPolicyCmd(f *Factory, runF func(context.Context, *IAMPolicyOptions) error) *cobra.Command {
	opts := &IAMPolicyOptions{IO: f.IO, Config: f.Config, Region: func() string { return f.Region }}
	c := &cobra.Command{
		Use:   "iam-policy",
		Short: "Print the least-privilege IAM policies for this .oopsrc",
		Long: `Print the IAM policies oops needs for this .oopsrc, narrowed to the store's
bucket and prefix, the load balancers, target groups, Route 53 hosted zone
and name, CodeDeploy application and groups and SNS topics it names:

  operator  for a person or CI running publish, deploy, rollback, status,
            shift, promote, off, repair, doctor, fsck and lock
  instance  for the instance profile, where the CodeDeploy hooks run
            oops hook env, wait-healthy and switch

No action has a wildcard. The few read-only calls AWS does not authorize
per resource (Describe* of Elastic Load Balancing, ec2:DescribeInstances,
route53:ListHostedZonesByName without hosted-zone-id, CodeDeploy's
deployment-target reads, sts:GetCallerIdentity) are granted on "*" in a
statement of their own.
Nothing is read from AWS: the policies come from .oopsrc alone.`,
		Example: `  oops iam-policy
  oops iam-policy --jq .operator > operator.json
  aws iam put-role-policy --role-name ci-deploy --policy-name oops --policy-document file://operator.json`,
		Args: noArgs,
	}
	addJSONFlags(c, &opts.JSON, &opts.Export, `print JSON: {"operator": POLICY, "instance": POLICY, "notes": [...]}`)
	return runCmd(c, opts, runF, iamPolicyRun)
}

func iamPolicyRun(_ context.Context, opts *IAMPolicyOptions) error {
	c, err := opts.Config()
	if err != nil {
		return err
	}
	p := iampolicy.For(c, opts.Region())
	if opts.JSON {
		return opts.Export.Write(opts.IO.Out, p, time.Now)
	}
	out := opts.IO.Out
	if p.Empty() {
		fmt.Fprintf(out, "%s needs no AWS permissions: its store is a directory and its target is not on AWS.\n", c.Path)
		return nil
	}
	for _, s := range []struct {
		heading string
		doc     iampolicy.Document
	}{
		{"Operator policy (people and CI running oops):", p.Operator},
		{"Instance policy (the instance profile, for oops hook):", p.Instance},
	} {
		b, err := json.MarshalIndent(s.doc, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n%s\n\n", s.heading, b)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(out, "Note: %s\n", n)
	}
	fmt.Fprintln(out, "Attach them with: oops iam-policy --jq .operator > operator.json; aws iam put-role-policy --role-name ROLE --policy-name oops --policy-document file://operator.json (and --jq .instance for the instance role).")
	return nil
}
