package local

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release/archive"
)

type entry struct {
	name, body, link string
	mode             fs.FileMode
	dir              bool
}

func tarGz(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: int64(e.mode), Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipOf(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		body := e.body
		switch {
		case e.dir:
			h.Name = strings.TrimSuffix(e.name, "/") + "/"
			mode |= fs.ModeDir
		case e.link != "":
			mode |= fs.ModeSymlink
			body = e.link
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnpack(t *testing.T) {
	t.Parallel()
	good := []entry{
		{name: "./", dir: true, mode: 0o755},
		{name: "bin/app", body: "#!/bin/sh\necho hi\n", mode: 0o755},
		{name: "static/index.html", body: "<h1>hi</h1>", mode: 0o644},
		{name: "current", link: "bin/app"},
	}
	tests := []struct {
		name    string
		archive func(*testing.T, []entry) []byte
		entries []entry
		wantErr string
	}{
		{"tar.gz keeps modes and links", tarGz, good, ""},
		{"zip keeps modes and links", zipOf, good, ""},
		{"tar.gz zip-slip refused", tarGz, []entry{{name: "../evil", body: "x", mode: 0o644}}, "outside the release folder"},
		{"zip zip-slip refused", zipOf, []entry{{name: "a/../../evil", body: "x", mode: 0o644}}, "outside the release folder"},
		{"absolute path refused", tarGz, []entry{{name: "/etc/evil", body: "x", mode: 0o644}}, "outside the release folder"},
		{"link out refused", tarGz, []entry{{name: "l", link: "../../etc/passwd"}}, "outside the release folder"},
		{"absolute link refused", zipOf, []entry{{name: "l", link: "/etc/passwd"}}, "outside the release folder"},
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
