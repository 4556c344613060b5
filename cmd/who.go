package cmd

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
)

// identity is who runs this command, as events and locks record it.
type identity struct {
	// Who is the AWS caller ARN when the application lives on AWS, else
	// the git user.name, else the OS user.
	Who    string
	OSUser string
	Host   string
}

// callerIdentityAPI is the one STS call oops makes.
type callerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ callerIdentityAPI = (*sts.Client)(nil)

// identity finds out who is running oops, once per command.
func (f *Factory) identity(ctx context.Context) identity {
	if f.ident != nil {
		return *f.ident
	}
	user, host := f.Who()
	id := identity{OSUser: user, Host: host}
	if f.onAWS() {
		id.Who = f.awsCaller(ctx)
	}
	if id.Who == "" {
		id.Who = f.gitUser()
	}
	if id.Who == "" {
		id.Who = user
	}
	f.ident = &id
	return id
}

// onAWS reports whether the store or the target is on AWS, where the
// caller's ARN is the identity that AWS itself logs (CloudTrail).
func (f *Factory) onAWS() bool {
	c, err := f.Config()
	if err != nil {
		return false
	}
	k := c.TargetKind()
	return strings.HasPrefix(c.StoreURL(), "s3://") || k == "elb" || k == "alb"
}

// awsCaller asks STS who the credentials belong to; "" when it cannot
// tell (no credentials, no network): history then names the git user.
func (f *Factory) awsCaller(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := f.AWSConfig(ctx)
	if err != nil {
		return ""
	}
	var api callerIdentityAPI = sts.NewFromConfig(cfg)
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return ""
	}
	return aws.ToString(out.Arn)
}

// gitUser is user.name from the repository's git config (with global and
// system config beneath it), or from the global config outside a repository.
func (f *Factory) gitUser() string {
	wd, err := f.WorkDir()
	if err != nil {
		return ""
	}
	if repo, err := git.PlainOpenWithOptions(wd, &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
		if c, err := repo.ConfigScoped(gitconfig.SystemScope); err == nil && c.User.Name != "" {
			return c.User.Name
		}
		return ""
	}
	for _, scope := range []gitconfig.Scope{gitconfig.GlobalScope, gitconfig.SystemScope} {
		if c, err := gitconfig.LoadConfig(scope); err == nil && c.User.Name != "" {
			return c.User.Name
		}
	}
	return ""
}
