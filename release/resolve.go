package release

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// MinPrefix is the shortest SHA prefix accepted as a revision.
const MinPrefix = 7

// ErrNoRepo: the folder is not inside a git repository.
var ErrNoRepo = errors.New("not in a git repository")

// AmbiguousError is a SHA prefix that matches several commits.
type AmbiguousError struct {
	Rev string
	// Candidates are the full SHAs; Described, when git knows them, adds
	// date and subject for the message.
	Candidates []string
	Described  []string
}

func (e *AmbiguousError) Error() string {
	lines := e.Described
	if len(lines) == 0 {
		lines = e.Candidates
	}
	return fmt.Sprintf("%s %q matches %d commits (use more characters):\n  %s",
		ErrAmbiguous, e.Rev, len(e.Candidates), strings.Join(lines, "\n  "))
}

func (e *AmbiguousError) Unwrap() error { return ErrAmbiguous }

// Info describes a commit, for release metadata and for bare artifacts.
type Info struct {
	Commit  string    `json:"commit"`
	Author  string    `json:"author"`
	Email   string    `json:"author_email"`
	Subject string    `json:"subject"`
	Time    time.Time `json:"commit_time"`
	// Branch is the branch whose tip is the commit (the checked-out one
	// first), or "".
	Branch string   `json:"branch,omitempty"`
	Tags   []string `json:"tags,omitempty"`
}

// Repo is an open git repository. Methods are safe for one goroutine.
type Repo struct {
	r   *git.Repository
	dir string

	refsOnce sync.Once
	branches map[plumbing.Hash][]string
	tags     map[plumbing.Hash][]string
	head     plumbing.ReferenceName
}

// OpenRepo opens the repository that contains dir (searching parents, like
// git). Outside a repository the error wraps ErrNoRepo.
func OpenRepo(dir string) (*Repo, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoRepo)
	}
	if err != nil {
		return nil, fmt.Errorf("open git repository at %s: %w", dir, err)
	}
	return &Repo{r: r, dir: dir}, nil
}

// Resolve turns rev into a full commit SHA. In a git repository rev is
// anything git understands: a full SHA, a unique prefix of at least 7 hex
// digits, a tag (annotated tags peeled), a branch, HEAD~N. Outside one, or
// when git does not know a prefix, full SHAs and unique prefixes are
// resolved against known (the commits with published releases; it is only
// called when needed, since it may cost a store listing).
func Resolve(repoDir, rev string, known func() ([]string, error)) (string, error) {
	r, err := OpenRepo(repoDir)
	if err != nil && !errors.Is(err, ErrNoRepo) {
		return "", err
	}
	return r.Resolve(rev, known)
}

// CommitInfo describes commit sha of the repository containing repoDir.
func CommitInfo(repoDir, sha string) (Info, error) {
	r, err := OpenRepo(repoDir)
	if err != nil {
		return Info{}, err
	}
	return r.CommitInfo(sha)
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// Resolve is the package-level Resolve on an open repository; a nil Repo
// resolves against known only.
func (r *Repo) Resolve(rev string, known func() ([]string, error)) (string, error) {
	rev = strings.TrimSpace(rev)
	if rev == "" {
		return "", fmt.Errorf("%w: empty revision", ErrUnknownRevision)
	}
	lower := strings.ToLower(rev)
	// A full SHA is taken as is: it may be published from another clone,
	// and whether it is published is for the caller to check.
	if IsFullSHA(lower) {
		return lower, nil
	}
	prefix := isHex(lower) && len(lower) >= MinPrefix
	if r != nil {
		if prefix {
			sha, err := r.prefix(rev, lower)
			if err != nil || sha != "" {
				return sha, err
			}
		}
		if h, err := r.r.ResolveRevision(plumbing.Revision(rev)); err == nil {
			return h.String(), nil
		}
	}
	if prefix {
		return resolveKnown(rev, lower, known, r != nil)
	}
	switch {
	case r == nil:
		return "", fmt.Errorf("%w %q: %w, so only SHAs (at least %d characters) of published releases can be resolved", ErrUnknownRevision, rev, ErrNoRepo, MinPrefix)
	case isHex(lower):
		return "", fmt.Errorf("%w %q: not a branch or tag, and SHA prefixes need at least %d characters", ErrUnknownRevision, rev, MinPrefix)
	}
	return "", fmt.Errorf("%w %q: git knows no such branch, tag or commit in %s", ErrUnknownRevision, rev, r.dir)
}

// prefix finds the commits git has whose SHA starts with lower; "" when
// none (then rev may still be a branch named like hex, or a release git
// has not fetched).
func (r *Repo) prefix(rev, lower string) (string, error) {
	type fastIter interface {
		HashesWithPrefix(prefix []byte) ([]plumbing.Hash, error)
	}
	var hashes []plumbing.Hash
	even, _ := hex.DecodeString(lower[:len(lower)&^1])
	if fi, ok := r.r.Storer.(fastIter); ok {
		hs, err := fi.HashesWithPrefix(even)
		if err != nil {
			return "", fmt.Errorf("look up %q in git: %w", rev, err)
		}
		hashes = hs
	} else {
		iter, err := r.r.CommitObjects()
		if err != nil {
			return "", fmt.Errorf("look up %q in git: %w", rev, err)
		}
		_ = iter.ForEach(func(c *object.Commit) error {
			hashes = append(hashes, c.Hash)
			return nil
		})
	}
	seen := map[plumbing.Hash]bool{}
	var commits []*object.Commit
	for _, h := range hashes {
		if !strings.HasPrefix(h.String(), lower) {
			continue
		}
		// Only commit-ish objects count: a tree or blob sharing the prefix
		// does not make a revision ambiguous.
		c, err := r.r.CommitObject(h)
		if err != nil {
			t, terr := r.r.TagObject(h)
			if terr != nil {
				continue
			}
			if c, err = t.Commit(); err != nil {
				continue
			}
		}
		if !seen[c.Hash] {
			seen[c.Hash] = true
			commits = append(commits, c)
		}
	}
	switch len(commits) {
	case 0:
		return "", nil
	case 1:
		return commits[0].Hash.String(), nil
	}
	sort.Slice(commits, func(i, j int) bool { return commits[i].Hash.String() < commits[j].Hash.String() })
	e := &AmbiguousError{Rev: rev}
	for _, c := range commits {
		e.Candidates = append(e.Candidates, c.Hash.String())
		e.Described = append(e.Described, fmt.Sprintf("%s  %s  %s", c.Hash.String()[:12], c.Committer.When.Format("2006-01-02"), subject(c.Message)))
	}
	return "", e
}

func resolveKnown(rev, lower string, known func() ([]string, error), inRepo bool) (string, error) {
	var all []string
	if known != nil {
		var err error
		if all, err = known(); err != nil {
			return "", fmt.Errorf("resolve %q against published releases: %w", rev, err)
		}
	}
	seen := map[string]bool{}
	var match []string
	for _, sha := range all {
		if strings.HasPrefix(sha, lower) && !seen[sha] {
			seen[sha] = true
			match = append(match, sha)
		}
	}
	sort.Strings(match)
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		where := "no published release matches it"
		if inRepo {
			where = "git knows no such commit and " + where
		} else {
			where = ErrNoRepo.Error() + " and " + where
		}
		return "", fmt.Errorf("%w %q: %s", ErrUnknownRevision, rev, where)
	}
	return "", &AmbiguousError{Rev: rev, Candidates: match}
}

func subject(msg string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(s)
}

// loadRefs indexes branches and tags by the commit they point at, once.
func (r *Repo) loadRefs() {
	r.refsOnce.Do(func() {
		r.branches = map[plumbing.Hash][]string{}
		r.tags = map[plumbing.Hash][]string{}
		if head, err := r.r.Reference(plumbing.HEAD, false); err == nil && head.Type() == plumbing.SymbolicReference {
			r.head = head.Target()
		}
		iter, err := r.r.References()
		if err != nil {
			return
		}
		_ = iter.ForEach(func(ref *plumbing.Reference) error {
			if ref.Type() != plumbing.HashReference {
				return nil
			}
			name := ref.Name()
			switch {
			case name.IsBranch():
				r.branches[ref.Hash()] = append(r.branches[ref.Hash()], name.Short())
			case name.IsRemote():
				// Remote-tracking branches come after local ones.
				r.branches[ref.Hash()] = append(r.branches[ref.Hash()], "~"+name.Short())
			case name.IsTag():
				h := ref.Hash()
				if t, err := r.r.TagObject(h); err == nil {
					if c, err := t.Commit(); err == nil {
						h = c.Hash
					}
				}
				r.tags[h] = append(r.tags[h], name.Short())
			}
			return nil
		})
	})
}

// CommitInfo describes a commit: author, subject, commit time, and the
// branch and tags pointing at it.
func (r *Repo) CommitInfo(sha string) (Info, error) {
	if !IsFullSHA(sha) {
		return Info{}, fmt.Errorf("%w %q: not a full SHA", ErrUnknownRevision, sha)
	}
	c, err := r.r.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return Info{}, fmt.Errorf("%w %s: %v", ErrUnknownRevision, Short(sha), err)
	}
	r.loadRefs()
	info := Info{
		Commit:  sha,
		Author:  c.Author.Name,
		Email:   c.Author.Email,
		Subject: subject(c.Message),
		Time:    c.Committer.When,
	}
	branches := append([]string(nil), r.branches[c.Hash]...)
	sort.Strings(branches)
	for _, b := range branches {
		if r.head != "" && b == r.head.Short() {
			info.Branch = b
			break
		}
	}
	if info.Branch == "" && len(branches) > 0 {
		info.Branch = strings.TrimPrefix(branches[0], "~")
	}
	info.Tags = append([]string(nil), r.tags[c.Hash]...)
	sort.Strings(info.Tags)
	return info, nil
}

// Root is the repository's top folder (the one holding .git).
func (r *Repo) Root() string {
	wt, err := r.r.Worktree()
	if err != nil {
		return r.dir
	}
	return wt.Filesystem.Root()
}
