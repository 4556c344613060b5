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

// MinPrefix is the shortest SHA prefix accepted as a commit: fewer hex
// digits are not a commit (they may still name a branch or tag).
const MinPrefix = 4

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
// anything git understands: a full SHA, a prefix of at least 4 hex digits,
// a tag (annotated tags peeled), a branch, HEAD~N. Outside one, full SHAs
// and prefixes are resolved against known (the commits with published
// releases; it may cost a store listing, so it is called only for
// prefixes). A REV never guesses: a prefix matching more than one commit,
// in git or among the published releases (or a hex name that is a branch
// or tag and also the prefix of another commit), is an *AmbiguousError
// listing them all, whatever its length.
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
	// A full SHA is taken as is: it may be published from another clone,
	// and whether it is published is for the caller to check.
	if lower := strings.ToLower(rev); IsFullSHA(lower) {
		return lower, nil
	}
	// "<base>~2", "<base>^": resolve the base here, never by git's guess
	// of a short hex name, then let git walk from its full SHA.
	base, suffix := rev, ""
	if i := strings.IndexAny(rev, "~^@:"); i > 0 {
		base, suffix = rev[:i], rev[i:]
	}
	if lower := strings.ToLower(base); isHex(lower) && !IsFullSHA(lower) {
		sha, err := r.resolveHex(base, lower, known)
		if err != nil || suffix == "" {
			return sha, err
		}
		if r == nil {
			return "", fmt.Errorf("%w %q: %w, so %s cannot be followed", ErrUnknownRevision, rev, ErrNoRepo, suffix)
		}
		h, err := r.r.ResolveRevision(plumbing.Revision(sha + suffix))
		if err != nil {
			return "", fmt.Errorf("%w %q: git cannot follow %s from %s in %s: %v%s", ErrUnknownRevision, rev, suffix, Short(sha), r.dir, err, r.shallowNote(suffix))
		}
		return h.String(), nil
	}
	if r == nil {
		return "", fmt.Errorf("%w %q: %w, so only SHAs (at least %d hex digits) of published releases can be resolved", ErrUnknownRevision, rev, ErrNoRepo, MinPrefix)
	}
	if h, err := r.r.ResolveRevision(plumbing.Revision(rev)); err == nil {
		return h.String(), nil
	}
	return "", fmt.Errorf("%w %q: git knows no such branch, tag or commit in %s%s", ErrUnknownRevision, rev, r.dir, r.shallowNote(suffix))
}

// shallowNote explains a failure to walk back through history (suffix
// has ~ or ^) in a shallow clone, as CI makes by default: the commit
// exists, this clone does not have it.
func (r *Repo) shallowNote(suffix string) string {
	if !strings.ContainsAny(suffix, "~^") {
		return ""
	}
	sh, err := r.r.Storer.Shallow()
	if err != nil || len(sh) == 0 {
		return ""
	}
	return fmt.Sprintf("; this is a shallow clone, whose history stops at %s: fetch more of it (git fetch --deepen=10, or git fetch --unshallow) or name the commit by its SHA", Short(sh[0].String()))
}

// resolveHex resolves a name made of hex digits (not a full SHA): the
// commits git has with that prefix, the published releases with it, and a
// branch or tag of that name; exactly one commit among them all, or an
// error. Fewer than MinPrefix digits can only be a branch or tag.
func (r *Repo) resolveHex(rev, lower string, known func() ([]string, error)) (string, error) {
	var cands []string
	seen := map[string]bool{}
	add := func(sha string) {
		if !seen[sha] {
			seen[sha] = true
			cands = append(cands, sha)
		}
	}
	ref := ""
	if r != nil {
		ref = r.refCommit(rev)
		if ref != "" {
			add(ref)
		}
	}
	if len(lower) < MinPrefix {
		if ref != "" {
			return ref, nil
		}
		if r == nil {
			return "", fmt.Errorf("%w %q: SHA prefixes need at least %d hex digits (%w)", ErrUnknownRevision, rev, MinPrefix, ErrNoRepo)
		}
		return "", fmt.Errorf("%w %q: not a branch or tag, and SHA prefixes need at least %d hex digits", ErrUnknownRevision, rev, MinPrefix)
	}
	if r != nil {
		shas, err := r.prefix(rev, lower)
		if err != nil {
			return "", err
		}
		for _, s := range shas {
			add(s)
		}
	}
	if known != nil {
		all, err := known()
		if err != nil {
			return "", fmt.Errorf("resolve %q against published releases: %w", rev, err)
		}
		for _, s := range all {
			if strings.HasPrefix(s, lower) {
				add(s)
			}
		}
	}
	switch len(cands) {
	case 1:
		return cands[0], nil
	case 0:
		where := "no published release matches it"
		if r != nil {
			where = "git knows no such branch, tag or commit and " + where
		} else {
			where = ErrNoRepo.Error() + " and " + where
		}
		return "", fmt.Errorf("%w %q: %s", ErrUnknownRevision, rev, where)
	}
	sort.Strings(cands)
	e := &AmbiguousError{Rev: rev, Candidates: cands}
	if r != nil {
		for _, sha := range cands {
			line := sha[:12] + "  (published; not in this clone)"
			if c, err := r.r.CommitObject(plumbing.NewHash(sha)); err == nil {
				line = fmt.Sprintf("%s  %s  %s", sha[:12], c.Committer.When.Format("2006-01-02"), subject(c.Message))
			}
			if sha == ref {
				line += "  (branch or tag " + rev + ")"
			}
			e.Described = append(e.Described, line)
		}
	}
	return "", e
}

// refCommit is the commit a branch, remote branch or tag named name points
// at (annotated tags peeled), by git's rules, or "".
func (r *Repo) refCommit(name string) string {
	for _, rule := range plumbing.RefRevParseRules {
		ref, err := r.r.Reference(plumbing.ReferenceName(fmt.Sprintf(rule, name)), true)
		if err != nil {
			continue
		}
		h := ref.Hash()
		if t, err := r.r.TagObject(h); err == nil {
			c, err := t.Commit()
			if err != nil {
				return ""
			}
			h = c.Hash
		}
		if _, err := r.r.CommitObject(h); err != nil {
			return ""
		}
		return h.String()
	}
	return ""
}

// prefix finds the commits git has whose SHA starts with lower (tags
// peeled to their commits), sorted.
func (r *Repo) prefix(rev, lower string) ([]string, error) {
	type fastIter interface {
		HashesWithPrefix(prefix []byte) ([]plumbing.Hash, error)
	}
	var hashes []plumbing.Hash
	even, _ := hex.DecodeString(lower[:len(lower)&^1])
	if fi, ok := r.r.Storer.(fastIter); ok {
		hs, err := fi.HashesWithPrefix(even)
		if err != nil {
			return nil, fmt.Errorf("look up %q in git: %w", rev, err)
		}
		hashes = hs
	} else {
		iter, err := r.r.CommitObjects()
		if err != nil {
			return nil, fmt.Errorf("look up %q in git: %w", rev, err)
		}
		_ = iter.ForEach(func(c *object.Commit) error {
			hashes = append(hashes, c.Hash)
			return nil
		})
	}
	seen := map[plumbing.Hash]bool{}
	var shas []string
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
			shas = append(shas, c.Hash.String())
		}
	}
	sort.Strings(shas)
	return shas, nil
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

// HeadCommit is the full SHA HEAD points at, or "" (an empty repository).
func (r *Repo) HeadCommit() string {
	h, err := r.r.ResolveRevision(plumbing.Revision(plumbing.HEAD))
	if err != nil {
		return ""
	}
	return h.String()
}

// Changed lists the tracked files whose content in the working tree or
// the index differs from HEAD (modified, added, deleted, renamed), sorted.
// Untracked files do not count: a build usually leaves some. A checked-out
// submodule counts as its files do (as git status says "modified
// content"): the build includes them.
func (r *Repo) Changed() ([]string, error) {
	paths, err := changed(r.r, r.dir, "")
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// changed lists the changed tracked files of repo, prefixed with prefix,
// and those of its checked-out submodules.
func changed(repo *git.Repository, dir, prefix string) ([]string, error) {
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("read the working tree of %s: %w", dir, err)
	}
	st, err := wt.Status()
	if err != nil {
		return nil, fmt.Errorf("compare the working tree of %s with HEAD: %w", dir, err)
	}
	var paths []string
	for path, fs := range st {
		if fs.Worktree == git.Untracked && fs.Staging == git.Untracked {
			continue
		}
		if fs.Worktree != git.Unmodified || fs.Staging != git.Unmodified {
			paths = append(paths, prefix+path)
		}
	}
	subs, err := wt.Submodules()
	if err != nil {
		return nil, fmt.Errorf("read the submodules of %s: %w", dir, err)
	}
	for _, sub := range subs {
		name := sub.Config().Path
		if _, listed := st[name]; listed {
			continue // moved to another commit: listed already
		}
		srepo, err := sub.Repository()
		if errors.Is(err, git.ErrSubmoduleNotInitialized) {
			continue // not checked out: no files to build from
		}
		if err != nil {
			return nil, fmt.Errorf("open submodule %s of %s: %w", name, dir, err)
		}
		more, err := changed(srepo, dir+"/"+name, prefix+name+"/")
		if err != nil {
			return nil, err
		}
		paths = append(paths, more...)
	}
	return paths, nil
}

// Generation is the generation number of commit sha: 1 for a root commit
// (or one whose parents this clone lacks, as in a shallow clone), else one
// more than its highest parent's. A descendant always has a higher
// generation than each of its ancestors. memo carries what earlier calls
// computed, so numbering every commit of a history walks it once. False
// when git does not have the commit.
func (r *Repo) Generation(sha string, memo map[string]int) (int, bool) {
	start := plumbing.NewHash(sha)
	if g, ok := memo[sha]; ok {
		return g, g > 0
	}
	parents := func(h plumbing.Hash) ([]plumbing.Hash, bool) {
		c, err := r.r.CommitObject(h)
		if err != nil {
			return nil, false
		}
		return c.ParentHashes, true
	}
	if _, ok := parents(start); !ok {
		memo[sha] = 0
		return 0, false
	}
	// Iterative depth-first walk: histories are deeper than the stack
	// should be.
	stack := []plumbing.Hash{start}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		if _, done := memo[h.String()]; done {
			stack = stack[:len(stack)-1]
			continue
		}
		ps, _ := parents(h)
		g, pending := 1, false
		for _, p := range ps {
			pg, done := memo[p.String()]
			if !done {
				if _, ok := parents(p); !ok {
					memo[p.String()] = 0 // not in this clone
					continue
				}
				stack = append(stack, p)
				pending = true
				continue
			}
			g = max(g, pg+1)
		}
		if !pending {
			memo[h.String()] = g
			stack = stack[:len(stack)-1]
		}
	}
	return memo[sha], true
}
