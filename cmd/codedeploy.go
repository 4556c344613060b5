package cmd

import (
	"context"

	sdk "github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/oops-deploy/oops/config"
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
