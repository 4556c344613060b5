package workflow

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
)

// Identity is who runs this command, as events and locks record it.
type Identity struct {
	// Who is the AWS caller ARN when the application lives on AWS, else
	// the git user.name, else the OS user.
	Who    string
	OSUser string
	Host   string
}

// Identity finds out who is running oops, once per command.
func (r *Runner) Identity(ctx context.Context) Identity {
	_, final := r.IdentityAsync(ctx)
	return final()
}

// IdentityAsync returns at once who runs this command as far as this host
// can tell (git user, else OS user), and a function that returns the final
// identity: the AWS caller ARN when on AWS. The STS call runs in the
// background, so it never delays a switch; only the event waits for it.
func (r *Runner) IdentityAsync(ctx context.Context) (Identity, func() Identity) {
	if r.ident != nil {
		id := *r.ident
		return id, func() Identity { return id }
	}
	user, host := r.d.Who()
	local := Identity{OSUser: user, Host: host, Who: r.gitUser()}
	if local.Who == "" {
		local.Who = user
	}
	if !r.OnAWS() {
		r.ident = &local
		return local, func() Identity { return local }
	}
	arn := make(chan string, 1)
	go func() { arn <- r.d.Caller(ctx) }()
	return local, func() Identity {
		if r.ident == nil {
			id := local
			if a := <-arn; a != "" {
				id.Who = a
			}
			r.ident = &id
		}
		return *r.ident
	}
}

// OnAWS reports whether the store or the target is on AWS, where the
// caller's ARN is the identity that AWS itself logs (CloudTrail).
func (r *Runner) OnAWS() bool {
	if r.d.Caller == nil {
		return false
	}
	c, err := r.d.Config()
	if err != nil {
		return false
	}
	k := c.TargetKind()
	return strings.HasPrefix(c.StoreURL(), "s3://") || k == "elb" || k == "alb" || k == "dns"
}

// gitUser is user.name as git would find it: the repository's config,
// then the global one (GIT_CONFIG_GLOBAL, ~/.gitconfig, XDG), then the
// system one (unless GIT_CONFIG_NOSYSTEM). Paths come from Deps.Getenv, so tests control them.
func (r *Runner) gitUser() string {
	if wd, err := r.d.WorkDir(); err == nil {
		if repo, err := git.PlainOpenWithOptions(wd, &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
			if c, err := repo.Config(); err == nil && c.User.Name != "" {
				return c.User.Name
			}
		}
	}
	for _, p := range r.gitConfigFiles() {
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
func (r *Runner) gitConfigFiles() []string {
	var files []string
	if g := r.d.Getenv("GIT_CONFIG_GLOBAL"); g != "" {
		files = append(files, g)
	} else {
		home := r.d.Getenv("HOME")
		if home != "" {
			files = append(files, filepath.Join(home, ".gitconfig"))
		}
		if x := r.d.Getenv("XDG_CONFIG_HOME"); x != "" {
			files = append(files, filepath.Join(x, "git", "config"))
		} else if home != "" {
			files = append(files, filepath.Join(home, ".config", "git", "config"))
		}
	}
	if r.d.Getenv("GIT_CONFIG_NOSYSTEM") == "" {
		files = append(files, "/etc/gitconfig")
	}
	return files
}
