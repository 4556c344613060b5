package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
)

// s3Located is a store whose objects CodeDeploy can fetch (store/s3).
type s3Located interface {
	Bucket() string
	FullKey(key string) string
}

// usesCodeDeploy reports whether releases reach the instances through
// CodeDeploy: a load balancer target with a deployment group, as in the
// original tool's .oopsrc.
func (f *Factory) usesCodeDeploy() bool {
	c, err := f.Config()
	if err != nil {
		return false
	}
	k := c.TargetKind()
	return (k == "elb" || k == "alb") && c.DeploymentGroup != ""
}

// Deployer returns what puts a release on a color: CodeDeploy when
// usesCodeDeploy, else the target itself when it can (the local target
// starts processes).
func (f *Factory) Deployer(ctx context.Context) (target.Deployer, error) {
	if f.usesCodeDeploy() {
		return f.codeDeployer(ctx, true)
	}
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	t, err := f.Target(ctx)
	if err != nil {
		return nil, err
	}
	if d, ok := t.(target.Deployer); ok {
		return d, nil
	}
	return nil, withHint(usageErrorf("%s: %s cannot install releases by itself", c.Path, t),
		`set "deployment-group" (with "application-name") to deploy through CodeDeploy`)
}

// codeDeployer opens CodeDeploy for the application and group in
// .oopsrc. withStore also finds the bucket and key prefix of the releases
// (deploying needs them; hooks only read deployments).
func (f *Factory) codeDeployer(ctx context.Context, withStore bool) (*codedeploy.Deployer, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	cfg, err := f.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	d := &codedeploy.Deployer{API: sdk.NewFromConfig(cfg), Application: c.ApplicationName, Group: c.DeploymentGroup}
	if !withStore {
		return d, nil
	}
	// The unwrapped store: only its location is needed.
	s, err := f.openStore(ctx)
	if err != nil {
		return nil, err
	}
	loc, ok := s.(s3Located)
	if !ok {
		return nil, withHint(usageErrorf("%s: CodeDeploy fetches releases from S3, but the store is %s", c.Path, s),
			`set "s3-bucket" (or an s3:// "store") in .oopsrc, or remove "deployment-group"`)
	}
	d.Bucket, d.FullKey = loc.Bucket(), loc.FullKey
	return d, nil
}

// stopDeployment is what deploy does after Ctrl-C: ask whether to stop
// the CodeDeploy deployment it was waiting for. Without a terminal it
// leaves the deployment running (the off color takes no traffic) and says
// how to stop it.
func (f *Factory) stopDeployment(ctx context.Context, d target.Deployer, id string) {
	cd, ok := d.(*codedeploy.Deployer)
	if !ok || id == "" {
		return
	}
	// The command's context is cancelled: stopping needs its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	how := fmt.Sprintf("aws deploy stop-deployment --deployment-id %s", id)
	if !f.IO.InTTY {
		fmt.Fprintf(f.IO.ErrOut, "interrupted: deployment %s keeps running on the off color (no traffic); stop it with: %s\n", id, how)
		return
	}
	yes, err := f.confirm(false, fmt.Sprintf("\ninterrupted: stop CodeDeploy deployment %s?", id))
	if err != nil || !yes {
		fmt.Fprintf(f.IO.ErrOut, "deployment %s keeps running on the off color (no traffic); stop it later with: %s\n", id, how)
		return
	}
	msg, err := cd.Stop(ctx, id)
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "oops: %v\n", err)
		return
	}
	fmt.Fprintf(f.IO.ErrOut, "stopping deployment %s: %s\n", id, msg)
}

// checkNoWait rejects --no-wait where there is nothing to wait for
// separately: other targets install and health-check in one step.
func (f *Factory) checkNoWait(noWait bool) error {
	if _, err := f.Config(); err != nil || !noWait || f.usesCodeDeploy() {
		return nil // a broken .oopsrc is reported by the command itself
	}
	return withHint(usageErrorf("--no-wait only applies to deployments through CodeDeploy"),
		`CodeDeploy is used when .oopsrc names a load balancer and a "deployment-group"`)
}

// installStep is the --dry-run line for installing rel on color off: for
// CodeDeploy, the exact deployment that would be created.
func (f *Factory) installStep(ctx context.Context, rel release.Release, off release.Color, port int, noWait bool) string {
	generic := fmt.Sprintf("install %s on %s (port %d) and wait until it is healthy", rel.Key, off, port)
	if !f.usesCodeDeploy() {
		return generic
	}
	d, err := f.codeDeployer(ctx, true)
	if err != nil {
		return generic
	}
	in, err := d.Input(target.DeployRequest{Release: rel, Color: off, Port: port})
	if err != nil {
		return generic + " (" + err.Error() + ")"
	}
	loc := in.Revision.S3Location
	step := fmt.Sprintf("create a CodeDeploy deployment in %s/%s of s3://%s/%s (%s", d.Application, d.Group,
		aws.ToString(loc.Bucket), aws.ToString(loc.Key), loc.BundleType)
	if loc.ETag != nil {
		step += ", ETag " + aws.ToString(loc.ETag)
	}
	step += "); its hooks install it on " + fmt.Sprintf("%s (port %d)", off, port)
	if noWait {
		return step + "; print its id and stop there (--no-wait)"
	}
	return step + "; wait until it succeeds"
}
