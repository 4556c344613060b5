package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	s3store "github.com/oops-deploy/oops/store/s3"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// Store opens the store named in .oopsrc (store, or s3-bucket): S3 for
// s3://bucket[/prefix], else a directory, created on first write. It is
// opened once per Set.
//
// Its writes are fenced: under a mutating command's lock (whose lease the
// context carries) a holder that lost the lock writes nothing.
func (s *Set) Store(ctx context.Context) (store.Store, error) {
	st, err := s.RawStore(ctx)
	if err != nil {
		return nil, err
	}
	return store.Guarded(st, target.CheckFence), nil
}

// RawStore is the store unfenced, for the lock itself (its heartbeats are
// what the fence asks) and for where CodeDeploy fetches releases.
func (s *Set) RawStore(ctx context.Context) (store.Store, error) {
	if s.store != nil {
		return s.store, nil
	}
	c, err := s.env.Config()
	if err != nil {
		return nil, err
	}
	u := c.StoreURL()
	rest, isS3 := strings.CutPrefix(u, "s3://")
	if !isS3 {
		s.store = dir.New(u)
		return s.store, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return nil, target.Hinted(workflow.Usagef("%s: store %q names no bucket", c.Path, u), `use "store": "s3://bucket[/prefix]"`)
	}
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	// A service-specific endpoint (moto, MinIO) needs path-style
	// addressing too.
	if ep := s.env.Getenv("AWS_ENDPOINT_URL_S3"); ep != "" {
		cfg.BaseEndpoint = aws.String(ep)
	}
	s.store = s3store.New(s3store.NewClient(cfg), bucket, prefix)
	return s.store, nil
}

// Index opens the release index of the application in .oopsrc.
func (s *Set) Index(ctx context.Context) (*store.Index, error) {
	c, err := s.env.Config()
	if err != nil {
		return nil, err
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	idx := store.NewIndex(st, c.ApplicationName)
	idx.OnCorrupt = s.env.OnCorrupt // read around it, once said
	idx.Generation = s.generation()
	return idx, nil
}

// generation numbers commits from the local git repository when there is
// one (opened on first use; each commit's history walked once), for the
// order of releases published at the same instant.
func (s *Set) generation() func(sha string) (int, bool) {
	var once sync.Once
	var repo *release.Repo
	memo := map[string]int{}
	return func(sha string) (int, bool) {
		once.Do(func() {
			if wd, err := s.env.WorkDir(); err == nil {
				repo, _ = release.OpenRepo(wd)
			}
		})
		if repo == nil {
			return 0, false
		}
		return repo.Generation(sha, memo)
	}
}

// Resolve turns REV into a full SHA: with git when the work dir is in a
// repository, else (or for commits git does not have) against the
// releases in the store, which are only listed when needed.
func (s *Set) Resolve(ctx context.Context, rev string) (string, error) {
	wd, err := s.env.WorkDir()
	if err != nil {
		return "", err
	}
	known := func() ([]string, error) {
		idx, err := s.Index(ctx)
		if err != nil {
			return nil, err
		}
		return idx.Commits(ctx)
	}
	sha, err := release.Resolve(wd, rev, known)
	switch {
	case errors.Is(err, release.ErrAmbiguous):
		return "", target.Hinted(err, "pass more characters of the SHA")
	case errors.Is(err, release.ErrUnknownRevision):
		return "", target.Hinted(err, "see the published releases with: oops list")
	case err != nil:
		return "", fmt.Errorf("resolve %q: %w", rev, err)
	}
	return sha, nil
}
