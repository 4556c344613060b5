package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	_, final := f.identityAsync(ctx)
	return final()
}

// identityAsync returns at once who runs this command as far as this host
// can tell (git user, else OS user), and a function that returns the final
// identity: the AWS caller ARN when on AWS. The STS call runs in the
// background, so it never delays a switch; only the event waits for it.
func (f *Factory) identityAsync(ctx context.Context) (identity, func() identity) {
	if f.ident != nil {
		id := *f.ident
		return id, func() identity { return id }
	}
	user, host := f.Who()
	local := identity{OSUser: user, Host: host, Who: f.gitUser()}
	if local.Who == "" {
		local.Who = user
	}
	if !f.onAWS() {
		f.ident = &local
		return local, func() identity { return local }
	}
	arn := make(chan string, 1)
	go func() { arn <- f.awsCaller(ctx) }()
	return local, func() identity {
		if f.ident == nil {
			id := local
			if a := <-arn; a != "" {
				id.Who = a
			}
			f.ident = &id
		}
		return *f.ident
	}
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

// gitUser is user.name as git would find it: the repository's config,
// then the global one (GIT_CONFIG_GLOBAL, ~/.gitconfig, XDG), then the
// system one (unless GIT_CONFIG_NOSYSTEM). Paths come from the Factory's
// environment, so tests control them.
func (f *Factory) gitUser() string {
	if wd, err := f.WorkDir(); err == nil {
		if repo, err := git.PlainOpenWithOptions(wd, &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
			if c, err := repo.Config(); err == nil && c.User.Name != "" {
				return c.User.Name
			}
		}
	}
	for _, p := range f.gitConfigFiles() {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if c, err := gitconfig.ReadConfig(bytes.NewReader(data)); err == nil && c.User.Name != "" {
			return c.User.Name
		}
	}
	return ""
}

// gitConfigFiles are the global and system git config files, the one
// that wins first.
func (f *Factory) gitConfigFiles() []string {
	var files []string
	if g := f.Getenv("GIT_CONFIG_GLOBAL"); g != "" {
		files = append(files, g)
	} else {
		home := f.Getenv("HOME")
		if home != "" {
			files = append(files, filepath.Join(home, ".gitconfig"))
		}
		if x := f.Getenv("XDG_CONFIG_HOME"); x != "" {
			files = append(files, filepath.Join(x, "git", "config"))
		} else if home != "" {
			files = append(files, filepath.Join(home, ".config", "git", "config"))
		}
	}
	if f.Getenv("GIT_CONFIG_NOSYSTEM") == "" {
		files = append(files, "/etc/gitconfig")
	}
	return files
}
