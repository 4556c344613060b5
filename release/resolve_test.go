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
	noKnown := func() ([]string, error) { t.Error("known() called although git could answer"); return nil, nil }
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
		{"abc", "at least 7"},
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
