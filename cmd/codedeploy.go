package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
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
func usesCodeDeploy(c *config.Config) bool {
	k := c.TargetKind()
	return (k == "elb" || k == "alb") && c.DeploymentGroup != ""
}

// Deployer returns what puts a release on a color: CodeDeploy when
// usesCodeDeploy, else the target itself when it can (the local target
// starts processes).
func (f *Factory) Deployer(ctx context.Context) (target.Deployer, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	if usesCodeDeploy(c) {
		d, err := codeDeployer(ctx, c, f.AWSConfig, f.openStore)
		if err != nil {
			return nil, err // not a typed nil
		}
		return d, nil
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

// codeDeployer opens CodeDeploy for the application and group in c. With
// openStore (the unwrapped store: only its location is needed) it also
// finds the bucket and key prefix of the releases; deploying needs them,
// hooks only read deployments and pass nil.
func codeDeployer(ctx context.Context, c *config.Config, loadAWS awsLoader, openStore func(context.Context) (store.Store, error)) (*codedeploy.Deployer, error) {
	cfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	d := &codedeploy.Deployer{API: sdk.NewFromConfig(cfg), Application: c.ApplicationName, Group: c.DeploymentGroup}
	if openStore == nil {
		return d, nil
	}
	s, err := openStore(ctx)
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
// how to stop it. confirm asks on ios's terminal (Factory.confirm).
func stopDeployment(ctx context.Context, ios *IOStreams, confirm func(yes bool, question string) (bool, error), d target.Deployer, id string) {
	cd, ok := d.(*codedeploy.Deployer)
	if !ok || id == "" {
		return
	}
	// The command's context is cancelled: stopping needs its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	how := fmt.Sprintf("aws deploy stop-deployment --deployment-id %s", id)
	if !ios.InTTY {
		fmt.Fprintf(ios.ErrOut, "interrupted: deployment %s keeps running on the off color (no traffic); stop it with: %s\n", id, how)
		return
	}
	yes, err := confirm(false, fmt.Sprintf("\ninterrupted: stop CodeDeploy deployment %s?", id))
	if err != nil || !yes {
		fmt.Fprintf(ios.ErrOut, "deployment %s keeps running on the off color (no traffic); stop it later with: %s\n", id, how)
		return
	}
	msg, err := cd.Stop(ctx, id)
	if err != nil {
		fmt.Fprintf(ios.ErrOut, "oops: %v\n", err)
		return
	}
	fmt.Fprintf(ios.ErrOut, "stopping deployment %s: %s\n", id, msg)
}

// checkNoWait rejects --no-wait where there is nothing to wait for
// separately: other targets install and health-check in one step. cfg is
// loaded only for --no-wait.
func checkNoWait(noWait bool, cfg func() (*config.Config, error)) error {
	if !noWait {
		return nil
	}
	if c, err := cfg(); err != nil || usesCodeDeploy(c) {
		return nil // a broken .oopsrc is reported by the command itself
	}
	return withHint(usageErrorf("--no-wait only applies to deployments through CodeDeploy"),
		`CodeDeploy is used when .oopsrc names a load balancer and a "deployment-group"`)
}

// installStep is the --dry-run line for installing rel on color off with
// d (Factory.Deployer): for CodeDeploy, the exact deployment that would be
// created.
func installStep(d target.Deployer, rel release.Release, off release.Color, port int, noWait bool) string {
	generic := fmt.Sprintf("install %s on %s (port %d) and wait until it is healthy", rel.Key, off, port)
	cd, ok := d.(*codedeploy.Deployer)
	if !ok {
		return generic
	}
	in, err := cd.Input(target.DeployRequest{Release: rel, Color: off, Port: port})
	if err != nil {
		return generic + " (" + err.Error() + ")"
	}
	loc := in.Revision.S3Location
	step := fmt.Sprintf("create a CodeDeploy deployment in %s/%s of s3://%s/%s (%s", cd.Application, cd.Group,
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
