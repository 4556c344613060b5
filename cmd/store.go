package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	s3store "github.com/oops-deploy/oops/store/s3"
	"github.com/oops-deploy/oops/target"
)

// Store opens the store named in .oopsrc (store, or s3-bucket): S3 for
// s3://bucket[/prefix], else a directory, created on first write. It is
// opened once per command.
//
// Its writes are fenced: under a mutating command's lock (whose lease the
// context carries) a holder that lost the lock writes nothing.
func (f *Factory) Store(ctx context.Context) (store.Store, error) {
	st, err := f.openStore(ctx)
	if err != nil {
		return nil, err
	}
	return store.Guarded(st, target.CheckFence), nil
}

func (f *Factory) openStore(ctx context.Context) (store.Store, error) {
	if f.store != nil {
		return f.store, nil
	}
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	u := c.StoreURL()
	rest, isS3 := strings.CutPrefix(u, "s3://")
	if !isS3 {
		f.store = dir.New(u)
		return f.store, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return nil, withHint(usageErrorf("%s: store %q names no bucket", c.Path, u), `use "store": "s3://bucket[/prefix]"`)
	}
	cfg, err := f.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	// A service-specific endpoint (moto, MinIO) needs path-style
	// addressing too.
	if ep := f.Getenv("AWS_ENDPOINT_URL_S3"); ep != "" {
		cfg.BaseEndpoint = aws.String(ep)
	}
	f.store = s3store.New(s3store.NewClient(cfg), bucket, prefix)
	return f.store, nil
}

// configStore is .oopsrc and the store, for a command that works on the
// application's records.
func (f *Factory) configStore(ctx context.Context) (*config.Config, store.Store, error) {
	c, err := f.Config()
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Store(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c, st, nil
}

// Index opens the release index of the application in .oopsrc.
func (f *Factory) Index(ctx context.Context) (*store.Index, error) {
	c, s, err := f.configStore(ctx)
	if err != nil {
		return nil, err
	}
	idx := store.NewIndex(s, c.ApplicationName)
	idx.OnCorrupt = f.Runner().WarnCorrupt // read around it, once said
	idx.Generation = f.generation()
	return idx, nil
}

// generation numbers commits from the local git repository when there is
// one (opened on first use; each commit's history walked once), for the
// order of releases published at the same instant.
func (f *Factory) generation() func(sha string) (int, bool) {
	var once sync.Once
	var repo *release.Repo
	memo := map[string]int{}
	return func(sha string) (int, bool) {
		once.Do(func() {
			if wd, err := f.WorkDir(); err == nil {
				repo, _ = release.OpenRepo(wd)
			}
		})
		if repo == nil {
			return 0, false
		}
		return repo.Generation(sha, memo)
	}
}

// ResolveRev turns REV into a full SHA: with git when the work dir is in a
// repository, else (or for commits git does not have) against the
// releases in the store, which are only listed when needed.
func (f *Factory) ResolveRev(ctx context.Context, rev string) (string, error) {
	wd, err := f.WorkDir()
	if err != nil {
		return "", err
	}
	known := func() ([]string, error) {
		idx, err := f.Index(ctx)
		if err != nil {
			return nil, err
		}
		return idx.Commits(ctx)
	}
	sha, err := release.Resolve(wd, rev, known)
	switch {
	case errors.Is(err, release.ErrAmbiguous):
		return "", withHint(err, "pass more characters of the SHA")
	case errors.Is(err, release.ErrUnknownRevision):
		return "", withHint(err, "see the published releases with: oops list")
	case err != nil:
		return "", fmt.Errorf("resolve %q: %w", rev, err)
	}
	return sha, nil
}
