package backend

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
	"github.com/oops-deploy/oops/target/dns"
	"github.com/oops-deploy/oops/target/local"
	"github.com/oops-deploy/oops/workflow"
)

// s3Located is a store whose objects CodeDeploy can fetch (store/s3).
type s3Located interface {
	Bucket() string
	FullKey(key string) string
}

// UsesCodeDeploy reports whether releases reach the instances through
// CodeDeploy: a load balancer target with a deployment group, as in the
// original tool's .oopsrc, or the dns target with a group per color.
func (s *Set) UsesCodeDeploy() bool {
	c, err := s.env.Config()
	return err == nil && usesCodeDeploy(c)
}

func usesCodeDeploy(c *config.Config) bool {
	k := c.TargetKind()
	return (k == "elb" || k == "alb") && c.DeploymentGroup != "" || (k == "dns" || k == "alb") && c.BlueDeploymentGroup != ""
}

// Deployer returns what puts a release on a color: CodeDeploy when
// UsesCodeDeploy, else the target itself when it can (the local target
// starts processes).
func (s *Set) Deployer(ctx context.Context) (target.Deployer, error) {
	c, err := s.env.Config()
	if err != nil {
		return nil, err
	}
	if usesCodeDeploy(c) {
		d, err := s.codeDeployer(ctx, c, true)
		if err != nil {
			return nil, err // not a typed nil
		}
		return d, nil
	}
	t, err := s.MainTarget(ctx)
	if err != nil {
		return nil, err
	}
	if len(c.DeployCommand) > 0 {
		tg, _ := t.(*dns.Target)
		return &dns.CommandDeployer{Command: c.DeployCommand, Dir: c.Dir, Target: tg,
			Open: func(ctx context.Context, rel release.Release) (io.ReadCloser, error) {
				idx, err := s.Index(ctx)
				if err != nil {
					return nil, err
				}
				return idx.Open(ctx, rel)
			}}, nil
	}
	if d, ok := t.(target.Deployer); ok {
		return d, nil
	}
	return nil, target.Hinted(workflow.Usagef("%s: %s cannot install releases by itself", c.Path, t),
		`set "deployment-group" (with "application-name") to deploy through CodeDeploy (on the dns target: blue-deployment-group and green-deployment-group, or deploy-command)`)
}

// codeDeployer opens CodeDeploy for the application and group in c. With
// locate it also finds the bucket and key prefix of the releases (in the
// unfenced store: only its location is needed); deploying needs them,
// hooks only read deployments.
func (s *Set) codeDeployer(ctx context.Context, c *config.Config, locate bool) (*codedeploy.Deployer, error) {
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	d := &codedeploy.Deployer{API: sdk.NewFromConfig(cfg), Application: c.ApplicationName, Group: c.DeploymentGroup}
	if c.BlueDeploymentGroup != "" {
		d.Groups = map[release.Color]string{release.Blue: c.BlueDeploymentGroup, release.Green: c.GreenDeploymentGroup}
	}
	if !locate {
		return d, nil
	}
	st, err := s.RawStore(ctx)
	if err != nil {
		return nil, err
	}
	loc, ok := st.(s3Located)
	if !ok {
		return nil, target.Hinted(workflow.Usagef("%s: CodeDeploy fetches releases from S3, but the store is %s", c.Path, st),
			`set "s3-bucket" (or an s3:// "store") in .oopsrc, or remove "deployment-group"`)
	}
	d.Bucket, d.FullKey = loc.Bucket(), loc.FullKey
	return d, nil
}

// Deployments reads CodeDeploy deployments for the hook protocol (no
// store: the hooks read them on the instances).
func (s *Set) Deployments(ctx context.Context) (workflow.DeploymentReader, error) {
	c, err := s.env.Config()
	if err != nil {
		return nil, err
	}
	d, err := s.codeDeployer(ctx, c, false)
	if err != nil {
		return nil, err
	}
	return cdDeployments{d}, nil
}

// cdDeployments is a workflow.DeploymentReader on CodeDeploy.
type cdDeployments struct{ d *codedeploy.Deployer }

func (c cdDeployments) Deployment(ctx context.Context, id string) (workflow.Deployment, error) {
	info, err := c.d.Info(ctx, id)
	if err != nil {
		return workflow.Deployment{}, err
	}
	return workflow.Deployment{
		Commit:  codedeploy.CommitOf(c.d.Application, info),
		Watched: strings.Contains(aws.ToString(info.Description), codedeploy.WatchedMarker),
	}, nil
}

// Leftovers are where fsck looks, beside the store, for what interrupted
// deploys left: the local target's state directory.
func (s *Set) Leftovers() []store.LeftoverCleaner {
	c, err := s.env.Config()
	if err != nil || c.TargetKind() != "local" {
		return nil
	}
	t, err := s.LocalTarget(c)
	if err != nil {
		return nil
	}
	return []store.LeftoverCleaner{localLeftovers{t}}
}

// localLeftovers lets fsck find and remove what interrupted local deploys
// left in the state directory.
type localLeftovers struct{ t *local.Target }

func (l localLeftovers) Leftovers(_ context.Context, olderThan time.Time) ([]store.Leftover, error) {
	ls, err := l.t.Leftovers(olderThan)
	if err != nil {
		return nil, err
	}
	out := make([]store.Leftover, len(ls))
	for i, x := range ls {
		out[i] = store.Leftover{Name: x.Path, What: x.What, Size: x.Size, Modified: x.Modified, ID: x.Path}
	}
	return out, nil
}

func (l localLeftovers) RemoveLeftover(_ context.Context, x store.Leftover) error {
	return l.t.RemoveLeftover(x.ID)
}
