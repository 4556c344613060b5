package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/release/archive"
	"github.com/oops-deploy/oops/target"
)

// FetchRequest is oops hook fetch: put this instance's release in Dir.
type FetchRequest struct {
	// Dir is where the release is unpacked: created, or an empty folder.
	// "": <application>-<short commit> in the working directory.
	Dir string
	// Commit is the commit to fetch; "": asked of InstanceCommit.
	Commit string
	// InstanceCommit finds the commit this instance was launched for
	// (its tags, or its launch template, through the metadata service).
	InstanceCommit func(context.Context) (string, error)
}

// FetchOutcome is what was fetched where.
type FetchOutcome struct {
	Release  release.Release `json:"release"`
	Dir      string          `json:"dir"`
	Verified bool            `json:"verified"`
}

// Fetch downloads this instance's release from the store, checks its size
// and SHA-256 against what was published before anything is unpacked, and
// unpacks it into req.Dir with the local target's rules (release/archive:
// nothing lands outside the folder; a refused archive leaves it empty).
func (r *Runner) Fetch(ctx context.Context, req FetchRequest) (*FetchOutcome, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	sha := req.Commit
	if sha == "" {
		if req.InstanceCommit == nil {
			return nil, Usagef("no commit to fetch: pass --commit, or run this on an instance launched by oops deploy")
		}
		if sha, err = req.InstanceCommit(ctx); err != nil {
			return nil, fmt.Errorf("find this instance's release: %w", err)
		}
	}
	if !release.IsFullSHA(sha) {
		return nil, Usagef("%q is not a full commit SHA (40 hex digits)", sha)
	}
	idx, err := r.d.Index(ctx)
	if err != nil {
		return nil, err
	}
	rel, err := idx.Get(ctx, sha)
	if err != nil {
		return nil, err
	}
	dir := req.Dir
	if dir == "" {
		wd, err := r.d.WorkDir()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(wd, c.ApplicationName+"-"+rel.Short())
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create release folder: %w", err)
	}
	out := &FetchOutcome{Release: rel, Dir: dir, Verified: rel.SHA256 != "" && !rel.Bare}
	if out.Verified {
		r.d.Report.Progressf("fetching %s (%d bytes, sha256 %s)", rel.Key, rel.Size, rel.SHA256)
	} else {
		r.d.Report.Progressf("fetching %s: UNVERIFIED: a bare artifact has no oops metadata (size, SHA-256) to check its bytes against", rel.Key)
	}
	tmp, err := os.CreateTemp(filepath.Dir(filepath.Clean(dir)), ".oops-fetch-*")
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rel.Short(), err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := r.download(ctx, idx.Open, rel, tmp, out.Verified); err != nil {
		return nil, err
	}
	fi, err := tmp.Stat()
	if err != nil {
		return nil, err
	}
	if _, err := archive.Unpack(tmp, fi.Size(), dir, archive.Options{Limits: ArchiveLimits(c)}); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", rel.Short(), err)
	}
	return out, nil
}

// download copies rel into f, hashing it; with verify, bytes past the
// published size are not written and a mismatch is target.ErrIntegrity.
func (r *Runner) download(ctx context.Context, open func(context.Context, release.Release) (io.ReadCloser, error), rel release.Release, f *os.File, verify bool) error {
	rc, err := open(ctx, rel)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	var src io.Reader = rc
	if verify {
		src = io.LimitReader(rc, rel.Size+1) // one byte more tells "larger"
	}
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err != nil {
		return fmt.Errorf("download %s: %w", rel.Key, err)
	}
	if !verify {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != rel.Size || got != rel.SHA256 {
		return target.Hinted(fmt.Errorf("%w: %s was changed in the store after publish: it has %s bytes with sha256 %s, but %d bytes with sha256 %s were published; nothing was unpacked",
			target.ErrIntegrity, rel.Key, sizeSeen(n, rel.Size), got, rel.Size, rel.SHA256), "put the published bytes back (oops fsck --deep checks every release)")
	}
	return nil
}

func sizeSeen(n, published int64) string {
	if n > published {
		return fmt.Sprintf("more than %d", published)
	}
	return fmt.Sprint(n)
}
