package release_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/oops-deploy/oops/release"
)

// fixture is a real temporary repository:
//
//	c1 -- c2 -- c3 (main, HEAD; tag v1.1 annotated)
//	       \-- (tag v1.0 lightweight on c2; branch feature on c2)
type fixture struct {
	dir        string
	c1, c2, c3 string
	repo       *git.Repository
}

func sig(name string, i int) *object.Signature {
	return &object.Signature{Name: name, Email: strings.ToLower(name) + "@example.com", When: time.Date(2024, 5, 1, 12, i, 0, 0, time.UTC)}
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(i int, msg string) string {
		if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte(msg), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add("f.txt"); err != nil {
			t.Fatal(err)
		}
		h, err := wt.Commit(msg, &git.CommitOptions{Author: sig("Ada", i), Committer: sig("Ada", i)})
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	f := fixture{dir: dir, repo: repo}
	f.c1 = commit(1, "first\n\nbody")
	f.c2 = commit(2, "second")
	f.c3 = commit(3, "third: the fix\nmore")
	mustRef := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = repo.CreateTag("v1.0", plumbing.NewHash(f.c2), nil)
	mustRef(err)
	_, err = repo.CreateTag("v1.1", plumbing.NewHash(f.c3), &git.CreateTagOptions{Tagger: sig("Ada", 4), Message: "release 1.1"})
	mustRef(err)
	mustRef(repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("feature"), plumbing.NewHash(f.c2))))
	return f
}

func TestResolveInRepo(t *testing.T) {
	f := newFixture(t)
	sub := filepath.Join(f.dir, "deep", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// Prefixes also consult the published releases (a prefix matching a
	// commit git has and another published one is ambiguous); names do not.
	noKnown := func() ([]string, error) { return nil, nil }
	tests := []struct {
		rev, want string
	}{
		{f.c2, f.c2},
		{strings.ToUpper(f.c2), f.c2},
		{f.c1[:7], f.c1},
		{f.c1[:11], f.c1}, // odd length
		{"HEAD", f.c3},
		{"HEAD~1", f.c2},
		{"HEAD~2", f.c1},
		{"HEAD^", f.c2},
		{"master", f.c3},
		{"feature", f.c2},
		{"refs/heads/feature", f.c2},
		{"v1.0", f.c2}, // lightweight tag
		{"v1.1", f.c3}, // annotated tag, peeled to its commit
		{"v1.1~1", f.c2},
	}
	for _, tc := range tests {
		for _, dir := range []string{f.dir, sub} {
			got, err := release.Resolve(dir, tc.rev, noKnown)
			if err != nil || got != tc.want {
				t.Errorf("Resolve(%s, %q) = %q, %v; want %q", dir, tc.rev, got, err, tc.want)
			}
		}
	}
}

func TestResolveUnknown(t *testing.T) {
	f := newFixture(t)
	published := "deadbeef" + strings.Repeat("0", 32)
	known := func() ([]string, error) { return []string{published}, nil }
	tests := []struct {
		rev, want string
	}{
		{"nope", "git knows no such branch"},
		{"HEAD~9", "git knows no such"},
		{"abc", "at least 4"},
		{"1234567", "no published release matches"},
		{"", "empty"},
	}
	for _, tc := range tests {
		_, err := release.Resolve(f.dir, tc.rev, known)
		if !errors.Is(err, release.ErrUnknownRevision) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%q): err = %v; want ErrUnknownRevision saying %q", tc.rev, err, tc.want)
		}
	}
	// A release published from a commit this clone has not fetched.
	if got, err := release.Resolve(f.dir, "deadbee", known); err != nil || got != published {
		t.Errorf("Resolve(deadbee) = %q, %v; want the published %s", got, err, published)
	}
}

func TestResolveOutsideRepo(t *testing.T) {
	dir := t.TempDir()
	a := "abcdef1" + strings.Repeat("1", 33)
	b := "abcdef1" + strings.Repeat("2", 33)
	c := "0123456" + strings.Repeat("3", 33)
	calls := 0
	known := func() ([]string, error) { calls++; return []string{a, b, c, c}, nil }

	if got, err := release.Resolve(dir, "0123456", known); err != nil || got != c {
		t.Errorf("unique prefix: %q, %v; want %s", got, err, c)
	}
	if got, err := release.Resolve(dir, a, known); err != nil || got != a {
		t.Errorf("full SHA: %q, %v", got, err)
	}
	if calls != 1 {
		t.Errorf("known() called %d times; a full SHA needs no listing", calls)
	}
	_, err := release.Resolve(dir, "abcdef1", known)
	var amb *release.AmbiguousError
	if !errors.Is(err, release.ErrAmbiguous) || !errors.As(err, &amb) || len(amb.Candidates) != 2 ||
		!strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Errorf("ambiguous prefix: err = %v; want ErrAmbiguous listing %s and %s", err, a, b)
	}
	_, err = release.Resolve(dir, "HEAD~1", known)
	if !errors.Is(err, release.ErrUnknownRevision) || !strings.Contains(err.Error(), "not in a git repository") {
		t.Errorf("HEAD~1 outside git: err = %v; want ErrUnknownRevision explaining there is no repository", err)
	}
	boom := errors.New("store down")
	if _, err := release.Resolve(dir, "0123456", func() ([]string, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("known() failure: err = %v, want it passed on", err)
	}
}

// TestResolveAmbiguousInGit stores two commits whose SHAs share their
// first 7 hex digits (found by trying messages; the search is
// deterministic) and expects both listed.
func TestResolveAmbiguousInGit(t *testing.T) {
	f := newFixture(t)
	mk := func(i int) *object.Commit {
		return &object.Commit{
			Author: *sig("Bob", 0), Committer: *sig("Bob", 0),
			Message:      fmt.Sprintf("collide %d\n", i),
			TreeHash:     plumbing.ZeroHash,
			ParentHashes: []plumbing.Hash{plumbing.NewHash(f.c1)},
		}
	}
	hashOf := func(c *object.Commit) plumbing.Hash {
		obj := f.repo.Storer.NewEncodedObject()
		if err := c.Encode(obj); err != nil {
			t.Fatal(err)
		}
		return obj.Hash()
	}
	seen := map[string]int{}
	var first, second int
	for i := 0; ; i++ {
		p := hashOf(mk(i)).String()[:7]
		if j, ok := seen[p]; ok {
			first, second = j, i
			break
		}
		seen[p] = i
		if i > 1<<16 {
			// Birthday bound for 28 bits is ~16k tries; give up well past it.
			t.Skip("no 7-hex collision found")
		}
	}
	var shas []string
	for _, i := range []int{first, second} {
		obj := f.repo.Storer.NewEncodedObject()
		if err := mk(i).Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := f.repo.Storer.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, h.String())
	}
	_, err := release.Resolve(f.dir, shas[0][:7], nil)
	var amb *release.AmbiguousError
	if !errors.As(err, &amb) || !errors.Is(err, release.ErrAmbiguous) {
		t.Fatalf("Resolve(%s): err = %v, want ambiguous", shas[0][:7], err)
	}
	for _, s := range shas {
		if !strings.Contains(err.Error(), s[:12]) {
			t.Errorf("error %q does not list candidate %s", err, s[:12])
		}
	}
	if !strings.Contains(err.Error(), "collide") {
		t.Errorf("error %q does not show the candidates' subjects", err)
	}
	// One more digit settles it.
	n := 7
	for shas[0][:n] == shas[1][:n] {
		n++
	}
	if got, err := release.Resolve(f.dir, shas[1][:n+1], nil); err != nil || got != shas[1] {
		t.Errorf("longer prefix: %q, %v; want %s", got, err, shas[1])
	}
}

func TestCommitInfo(t *testing.T) {
	f := newFixture(t)
	info, err := release.CommitInfo(f.dir, f.c3)
	if err != nil {
		t.Fatal(err)
	}
	want := release.Info{Commit: f.c3, Author: "Ada", Email: "ada@example.com", Subject: "third: the fix",
		Time: sig("", 3).When, Branch: "master", Tags: []string{"v1.1"}}
	if !info.Time.Equal(want.Time) {
		t.Errorf("commit time %v, want %v", info.Time, want.Time)
	}
	info.Time = want.Time
	if fmt.Sprint(info) != fmt.Sprint(want) {
		t.Errorf("CommitInfo(c3) =\n %+v\nwant\n %+v", info, want)
	}
	info, err = release.CommitInfo(f.dir, f.c2)
	if err != nil || info.Branch != "feature" || strings.Join(info.Tags, ",") != "v1.0" || info.Subject != "second" {
		t.Errorf("CommitInfo(c2) = %+v, %v; want branch feature, tag v1.0", info, err)
	}
	info, err = release.CommitInfo(f.dir, f.c1)
	if err != nil || info.Branch != "" || len(info.Tags) != 0 || info.Subject != "first" {
		t.Errorf("CommitInfo(c1) = %+v, %v; want no branch or tags, subject %q", info, err, "first")
	}
	if _, err := release.CommitInfo(f.dir, strings.Repeat("e", 40)); !errors.Is(err, release.ErrUnknownRevision) {
		t.Errorf("CommitInfo of an unknown commit: %v, want ErrUnknownRevision", err)
	}
	if _, err := release.CommitInfo(t.TempDir(), f.c1); !errors.Is(err, release.ErrNoRepo) {
		t.Errorf("CommitInfo outside git: %v, want ErrNoRepo", err)
	}
}

// collide stores commits (children of parent) until two share their
// first n hex digits, and returns both SHAs. The search is deterministic.
func collide(t *testing.T, f fixture, n int) (string, string) {
	t.Helper()
	mk := func(i int) *object.Commit {
		return &object.Commit{
			Author: *sig("Bob", 0), Committer: *sig("Bob", 0),
			Message:      fmt.Sprintf("twin %d\n", i),
			TreeHash:     plumbing.ZeroHash,
			ParentHashes: []plumbing.Hash{plumbing.NewHash(f.c1)},
		}
	}
	seen := map[string]plumbing.Hash{}
	for i := 0; i < 1<<20; i++ {
		obj := f.repo.Storer.NewEncodedObject()
		if err := mk(i).Encode(obj); err != nil {
			t.Fatal(err)
		}
		p := obj.Hash().String()[:n]
		if h, ok := seen[p]; ok {
			if _, err := f.repo.Storer.SetEncodedObject(obj); err != nil {
				t.Fatal(err)
			}
			return h.String(), obj.Hash().String()
		}
		seen[p] = obj.Hash()
		if _, err := f.repo.Storer.SetEncodedObject(obj); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("no %d-hex collision found", n)
	return "", ""
}

// TestResolveNeverGuesses: a prefix matching more than one commit, in git
// or among the published releases, is ambiguous at every length from 4
// digits; fewer than 4 hex digits are not a commit; a hex name that is
// both a branch and a commit prefix of another commit is ambiguous too.
func TestResolveNeverGuesses(t *testing.T) {
	f := newFixture(t)
	a, b := collide(t, f, 4)
	common := 4
	for a[common] == b[common] {
		common++
	}
	// A release published from another clone, sharing c3's first 9 digits.
	other := f.c3[:9] + strings.Repeat("0", 31)
	if other == f.c3 {
		other = f.c3[:9] + strings.Repeat("1", 31)
	}
	known := func() ([]string, error) { return []string{a, other}, nil }
	mustRef := func(name, sha string) {
		t.Helper()
		if err := f.repo.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(name), plumbing.NewHash(sha))); err != nil {
			t.Fatal(err)
		}
	}
	mustRef(f.c1[:6], f.c2) // a branch named like c1's prefix, pointing elsewhere
	mustRef("beef", f.c2)   // a branch whose name is hex

	type tc struct {
		rev  string
		want []string // candidates; one means it resolves to it
	}
	var tests []tc
	for n := 4; n <= common; n++ {
		tests = append(tests, tc{a[:n], []string{a, b}}, tc{strings.ToUpper(b[:n]), []string{a, b}})
	}
	tests = append(tests,
		tc{a[:common+1], []string{a}},
		tc{b[:common+1] + "~1", []string{f.c1}},
		tc{a[:4] + "~1", []string{a, b}}, // ambiguous below a suffix too
		tc{f.c3[:7], []string{f.c3, other}},
		tc{f.c3[:9], []string{f.c3, other}},
		tc{f.c3[:10], []string{f.c3}},
		tc{f.c1[:6], []string{f.c1, f.c2}},
		tc{f.c2[:8], []string{f.c2}},
	)
	if !strings.HasPrefix(f.c1, "beef") && !strings.HasPrefix(f.c2, "beef") && !strings.HasPrefix(f.c3, "beef") {
		tests = append(tests, tc{"beef", []string{f.c2}})
	}
	for _, tc := range tests {
		got, err := release.Resolve(f.dir, tc.rev, known)
		if len(tc.want) == 1 {
			if err != nil || got != tc.want[0] {
				t.Errorf("Resolve(%q) = %q, %v; want %s", tc.rev, got, err, tc.want[0])
			}
			continue
		}
		var amb *release.AmbiguousError
		if !errors.As(err, &amb) || !errors.Is(err, release.ErrAmbiguous) {
			t.Errorf("Resolve(%q) = %q, %v; want ambiguous between %v", tc.rev, got, err, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w[:12]) {
				t.Errorf("Resolve(%q): %v does not list %s", tc.rev, err, w[:12])
			}
		}
	}
	// Fewer than 4 hex digits are not a commit, even one git could find.
	for _, rev := range []string{f.c1[:1], f.c2[:2], f.c3[:3]} {
		got, err := release.Resolve(f.dir, rev, known)
		if !errors.Is(err, release.ErrUnknownRevision) || !strings.Contains(err.Error(), "at least 4") {
			t.Errorf("Resolve(%q) = %q, %v; want ErrUnknownRevision: at least 4 hex digits", rev, got, err)
		}
	}
	// The published releases cannot be listed: no guess either.
	boom := errors.New("store down")
	if _, err := release.Resolve(f.dir, f.c3[:7], func() ([]string, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("known() failure: err = %v, want it passed on", err)
	}
}

// Outside a repository, prefixes of 4 to 39 digits resolve against the
// published releases, and an ambiguous one is an error at every length.
func TestResolveNeverGuessesOutsideRepo(t *testing.T) {
	dir := t.TempDir()
	a := "2b4a" + strings.Repeat("1", 36)
	b := "2b4a" + strings.Repeat("2", 36)
	known := func() ([]string, error) { return []string{a, b}, nil }
	for _, rev := range []string{"2b4a", "2B4A", "2b4a~1"} {
		if got, err := release.Resolve(dir, rev, known); !errors.Is(err, release.ErrAmbiguous) || !strings.Contains(fmt.Sprint(err), a) {
			t.Errorf("Resolve(%q) = %q, %v; want ambiguous", rev, got, err)
		}
	}
	if got, err := release.Resolve(dir, "2b4a2", known); err != nil || got != b {
		t.Errorf("Resolve(2b4a2) = %q, %v; want %s", got, err, b)
	}
	if _, err := release.Resolve(dir, "2b4", known); !errors.Is(err, release.ErrUnknownRevision) || !strings.Contains(err.Error(), "at least 4") {
		t.Errorf("Resolve(2b4): %v; want ErrUnknownRevision: at least 4 hex digits", err)
	}
}

func TestChanged(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string, wt *git.Worktree)
		want   []string
	}{
		{"clean", func(*testing.T, string, *git.Worktree) {}, nil},
		{"untracked files do not count", func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, filepath.Join(dir, "build.zip"), "zip")
		}, nil},
		{"modified", func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, filepath.Join(dir, "f.txt"), "edited")
		}, []string{"f.txt"}},
		{"staged", func(t *testing.T, dir string, wt *git.Worktree) {
			write(t, filepath.Join(dir, "new.txt"), "new")
			if _, err := wt.Add("new.txt"); err != nil {
				t.Fatal(err)
			}
		}, []string{"new.txt"}},
		{"deleted", func(t *testing.T, dir string, _ *git.Worktree) {
			if err := os.Remove(filepath.Join(dir, "f.txt")); err != nil {
				t.Fatal(err)
			}
		}, []string{"f.txt"}},
		{"modified, and ignored by .gitignore (still tracked)", func(t *testing.T, dir string, _ *git.Worktree) {
			if err := os.MkdirAll(filepath.Join(dir, ".git", "info"), 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, ".git", "info", "exclude"), "*.txt\n")
			write(t, filepath.Join(dir, "f.txt"), "edited")
		}, []string{"f.txt"}},
		{"modified, and ignored by .gitignore", func(t *testing.T, dir string, _ *git.Worktree) {
			write(t, filepath.Join(dir, ".gitignore"), "f.txt\n")
			write(t, filepath.Join(dir, "f.txt"), "edited")
		}, []string{"f.txt"}},
		{"only the mode changed", func(t *testing.T, dir string, _ *git.Worktree) {
			if err := os.Chmod(filepath.Join(dir, "f.txt"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, []string{"f.txt"}},
		{"renamed", func(t *testing.T, dir string, wt *git.Worktree) {
			if _, err := wt.Move("f.txt", "g.txt"); err != nil {
				t.Fatal(err)
			}
		}, []string{"f.txt", "g.txt"}},
		{"renamed, not staged", func(t *testing.T, dir string, _ *git.Worktree) {
			if err := os.Rename(filepath.Join(dir, "f.txt"), filepath.Join(dir, "g.txt")); err != nil {
				t.Fatal(err)
			}
		}, []string{"f.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			wt, err := f.repo.Worktree()
			if err != nil {
				t.Fatal(err)
			}
			tc.change(t, f.dir, wt)
			r, err := release.OpenRepo(f.dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Changed()
			if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("Changed() = %q, %v; want %q", got, err, tc.want)
			}
			if h := r.HeadCommit(); h != f.c3 {
				t.Fatalf("HeadCommit() = %q, want %s", h, f.c3)
			}
		})
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGeneration(t *testing.T) {
	f := newFixture(t)
	// A commit whose parent this clone lacks (a shallow clone's boundary).
	orphan := &object.Commit{Author: *sig("Bob", 0), Committer: *sig("Bob", 0), Message: "shallow\n",
		TreeHash: plumbing.ZeroHash, ParentHashes: []plumbing.Hash{plumbing.NewHash(strings.Repeat("ab", 20))}}
	obj := f.repo.Storer.NewEncodedObject()
	if err := orphan.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := f.repo.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	r, err := release.OpenRepo(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	memo := map[string]int{}
	tests := []struct {
		sha    string
		want   int
		wantOK bool
	}{
		{f.c3, 3, true}, // first: walks the whole history
		{f.c1, 1, true},
		{f.c2, 2, true},
		{h.String(), 1, true},
		{strings.Repeat("cd", 20), 0, false},
	}
	for _, tc := range tests {
		if g, ok := r.Generation(tc.sha, memo); g != tc.want || ok != tc.wantOK {
			t.Errorf("Generation(%s) = %d, %v; want %d, %v", tc.sha[:7], g, ok, tc.want, tc.wantOK)
		}
	}
}
