package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release/archive"
	"github.com/oops-deploy/oops/release/archive/archivetest"
)

// entry is one entry of a test archive.
type entry = archivetest.Entry

func tarGz(t *testing.T, entries []entry) []byte { return archivetest.TarGz(t, entries...) }
func zipOf(t *testing.T, entries []entry) []byte { return archivetest.Zip(t, entries...) }

func TestUnpack(t *testing.T) {
	t.Parallel()
	good := []entry{
		{Name: "./", Dir: true, Mode: 0o755},
		{Name: "bin/app", Body: "#!/bin/sh\necho hi\n", Mode: 0o755},
		{Name: "static/index.html", Body: "<h1>hi</h1>", Mode: 0o644},
		{Name: "current", Link: "bin/app"},
	}
	tests := []struct {
		name    string
		archive func(*testing.T, []entry) []byte
		entries []entry
		wantErr string
	}{
		{"tar.gz keeps modes and links", tarGz, good, ""},
		{"zip keeps modes and links", zipOf, good, ""},
		{"tar.gz zip-slip refused", tarGz, []entry{{Name: "../evil", Body: "x", Mode: 0o644}}, "outside the release folder"},
		{"zip zip-slip refused", zipOf, []entry{{Name: "a/../../evil", Body: "x", Mode: 0o644}}, "outside the release folder"},
		{"absolute path refused", tarGz, []entry{{Name: "/etc/evil", Body: "x", Mode: 0o644}}, "outside the release folder"},
		{"link out refused", tarGz, []entry{{Name: "l", Link: "../../etc/passwd"}}, "outside the release folder"},
		{"absolute link refused", zipOf, []entry{{Name: "l", Link: "/etc/passwd"}}, "outside the release folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			file := filepath.Join(root, "artifact")
			if err := os.WriteFile(file, tc.archive(t, tc.entries), 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "out")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			err := unpack(file, dir, archive.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if _, err := os.Stat(filepath.Join(root, "evil")); err == nil {
					t.Fatal("a file was written outside the release directory")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(dir, "bin/app"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o100 == 0 {
				t.Errorf("bin/app mode %v: the executable bit was lost", fi.Mode())
			}
			if b, err := os.ReadFile(filepath.Join(dir, "static/index.html")); err != nil || string(b) != "<h1>hi</h1>" {
				t.Errorf("static/index.html = %q, %v", b, err)
			}
			if l, err := os.Readlink(filepath.Join(dir, "current")); err != nil || l != "bin/app" {
				t.Errorf("link current -> %q, %v", l, err)
			}
		})
	}
}

func TestUnpackRejectsOtherFormats(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	file := filepath.Join(root, "artifact")
	if err := os.WriteFile(file, []byte("just text"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unpack(file, root, archive.Options{}); err == nil || !strings.Contains(err.Error(), "not a zip or tar.gz") {
		t.Fatalf("err = %v", err)
	}
}
