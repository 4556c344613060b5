package release_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release"
)

// gitCLI runs the git command line in dir: go-git cannot add submodules.
func gitCLI(t *testing.T, dir string, args ...string) {
	t.Helper()
	c := exec.Command("git", append([]string{"-c", "protocol.file.allow=always"}, args...)...)
	c.Dir = dir
	c.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestChangedSubmodule: a build includes its submodules' files, so an
// edit inside a submodule makes the tree dirty as git status says
// ("modified: lib (modified content)"), not only a submodule moved to
// another commit.
func TestChangedSubmodule(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git command line to add a submodule with")
	}
	tests := []struct {
		name   string
		change func(t *testing.T, lib string)
		want   string
	}{
		{"clean", func(*testing.T, string) {}, ""},
		{"untracked file in the submodule", func(t *testing.T, lib string) {
			write(t, filepath.Join(lib, "build.o"), "obj")
		}, ""},
		{"file edited in the submodule", func(t *testing.T, lib string) {
			write(t, filepath.Join(lib, "s.txt"), "edited")
		}, "lib/s.txt"},
		{"submodule moved to another commit", func(t *testing.T, lib string) {
			write(t, filepath.Join(lib, "s.txt"), "edited")
			gitCLI(t, lib, "commit", "-qam", "s2")
		}, "lib"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := t.TempDir()
			gitCLI(t, sub, "init", "-q")
			write(t, filepath.Join(sub, "s.txt"), "1")
			gitCLI(t, sub, "add", ".")
			gitCLI(t, sub, "commit", "-qm", "s1")
			dir := t.TempDir()
			gitCLI(t, dir, "init", "-q")
			write(t, filepath.Join(dir, "m.txt"), "1")
			gitCLI(t, dir, "add", ".")
			gitCLI(t, dir, "submodule", "add", "-q", sub, "lib")
			gitCLI(t, dir, "commit", "-qm", "m1")
			tc.change(t, filepath.Join(dir, "lib"))
			r, err := release.OpenRepo(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Changed()
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Fatalf("Changed() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestResolveShallow: CI clones one commit deep by default; HEAD~1 there is
// not "no such commit" but history the clone lacks, and the error says so
// and what to do.
func TestResolveShallow(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git command line to make a shallow clone with")
	}
	src := t.TempDir()
	gitCLI(t, src, "init", "-q", "-b", "main")
	for _, s := range []string{"1", "2", "3"} {
		write(t, filepath.Join(src, "f.txt"), s)
		gitCLI(t, src, "add", ".")
		gitCLI(t, src, "commit", "-qm", "c"+s)
	}
	dst := filepath.Join(t.TempDir(), "clone")
	gitCLI(t, src, "clone", "-q", "--depth", "1", "file://"+src, dst)
	for _, rev := range []string{"HEAD~1", "main^", "HEAD~2"} {
		t.Run(rev, func(t *testing.T) {
			_, err := release.Resolve(dst, rev, nil)
			if !errors.Is(err, release.ErrUnknownRevision) || !strings.Contains(err.Error(), "shallow clone") || !strings.Contains(err.Error(), "git fetch --deepen") {
				t.Fatalf("Resolve(%s) = %v; want an unknown revision that says the clone is shallow and how to deepen it", rev, err)
			}
		})
	}
	if _, err := release.Resolve(dst, "nosuch", nil); err == nil || strings.Contains(err.Error(), "shallow") {
		t.Errorf("Resolve(nosuch) = %v; want no word of shallow clones, depth does not explain it", err)
	}
}
