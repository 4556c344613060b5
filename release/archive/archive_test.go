package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	type build func(testing.TB, ...ent) []byte
	small := Limits{MaxSize: 64 << 20, MaxEntries: 5, MaxRatio: 10}
	tests := []struct {
		name    string
		build   build
		entries []ent
		lim     Limits
		entry   string // the entry the error names; "" for the archive
		rule    string // part of the rule; "" when valid
	}{
		{"tar.gz release", tarGz, []ent{dir("./"), dir("bin"), {Name: "bin/app", Body: "#!/bin/sh\n", Mode: 0o755}, file("static/i.html", "<h1>"), link("current", "bin/app"), link("bin/up", "../static")}, Limits{}, "", ""},
		{"zip release", zipOf, []ent{dir("bin"), {Name: "bin/app", Body: "#!/bin/sh\n", Mode: 0o755}, link("current", "bin/app"), link("static", ".")}, Limits{}, "", ""},
		{"windows zip", zipOf, []ent{file(`bin\app.exe`, "MZ")}, Limits{}, "", ""},
		{"dangling link inside", tarGz, []ent{file("app", "x"), link("log", "var/log")}, Limits{}, "", ""},
		{"folder entry after its files", tarGz, []ent{file("bin/app", "x"), dir("bin/")}, Limits{}, "", ""},
		{"global pax header", tarGz, []ent{{Name: "pax_global_header", Type: tar.TypeXGlobalHeader}, file("app", "x")}, Limits{}, "", ""},

		{"tar.gz chained symlinks", tarGz, chain(), Limits{}, "a/b/a/b/a/b/c", "goes through the symlink \"a/b\""},
		{"zip chained symlinks", zipOf, chain(), Limits{}, "a/b/a/b/a/b/c", "goes through the symlink \"a/b\""},
		{"link through links", tarGz, []ent{file("app", "x"), link("s", "."), link("t", "s/s/s/..")}, Limits{}, "t", "resolves outside the release folder"},
		{"link loop", tarGz, []ent{file("app", "x"), link("s", "t/x"), link("t", "s/y")}, Limits{}, "s", "resolves outside the release folder (or loops)"},
		{"link out", zipOf, []ent{file("app", "x"), link("l", "../../etc/passwd")}, Limits{}, "l", "resolves outside the release folder"},
		{"absolute link", tarGz, []ent{file("app", "x"), link("l", "/etc/passwd")}, Limits{}, "l", "outside the release folder"},
		{"tar.gz ../", tarGz, []ent{file("../evil", "x")}, Limits{}, "../evil", "leads outside the release folder"},
		{"zip ../ midway", zipOf, []ent{file("a/../../evil", "x")}, Limits{}, "a/../../evil", "leads outside the release folder"},
		{"zip windows ..", zipOf, []ent{file(`a\..\..\evil`, "x")}, Limits{}, `a\..\..\evil`, "leads outside the release folder"},
		{"absolute path", tarGz, []ent{file("/etc/evil", "x")}, Limits{}, "/etc/evil", "absolute path"},
		{"drive letter", zipOf, []ent{file("C:/evil", "x")}, Limits{}, "C:/evil", "absolute path"},
		{"hard link", tarGz, []ent{file("app", "x"), {Name: "h", Type: tar.TypeLink, Link: "/etc/shadow"}}, Limits{}, "h", "hard link"},
		{"tar device", tarGz, []ent{{Name: "dev", Type: tar.TypeChar}}, Limits{}, "dev", "character device"},
		{"zip device", zipOf, []ent{{Name: "dev", Type: tar.TypeChar}}, Limits{}, "dev", "character device"},
		{"fifo", tarGz, []ent{{Name: "p", Type: tar.TypeFifo}}, Limits{}, "p", "named pipe"},
		{"tar duplicate", tarGz, []ent{file("app", "1"), file("app", "2")}, Limits{}, "app", "duplicate"},
		{"zip duplicate via ./", zipOf, []ent{file("app", "1"), file("./app", "2")}, Limits{}, "./app", "duplicate"},
		{"file then folder of it", tarGz, []ent{file("a", "1"), file("a/b", "2")}, Limits{}, "a/b", "which is a file"},
		{"folder then a file on it", tarGz, []ent{file("a/b", "1"), file("a", "2")}, Limits{}, "a", "now not a folder"},
		{"link then folder", tarGz, []ent{file("app", "1"), link("d", "."), dir("d")}, Limits{}, "d", "duplicate"},
		{"empty zip", zipOf, nil, Limits{}, "", "holds no regular file"},
		{"only folders", tarGz, []ent{dir("bin")}, Limits{}, "", "holds no regular file"},
		{"only a link", zipOf, []ent{link("l", ".")}, Limits{}, "", "holds no regular file"},

		{"too many entries", tarGz, []ent{file("1", ""), file("2", ""), file("3", ""), file("4", ""), file("5", ""), file("6", "")}, small, "", "more than 5 entries (raise archive-max-entries"},
		{"too big", zipOf, []ent{zeros("a", 3<<20), zeros("b", 3<<20)}, Limits{MaxSize: 4 << 20, MaxRatio: 1 << 20}, "b", "past 4.0 MiB (raise archive-max-size"},
		{"zip bomb", zipOf, []ent{zeros("z", 8<<20)}, small, "z", "compression ratio past 10:1"},
		{"tar.gz bomb", tarGz, []ent{zeros("z", 8<<20)}, small, "z", "compression ratio past 10:1"},
		{"small but compressible", tarGz, []ent{zeros("z", 512<<10)}, small, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := tc.build(t, tc.entries...)
			sum, err := Validate(bytes.NewReader(data), int64(len(data)), tc.lim)
			if tc.rule == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if sum.Files == 0 {
					t.Errorf("summary %+v counts no file", sum)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if ae.Entry != tc.entry || !strings.Contains(ae.Rule, tc.rule) {
				t.Errorf("err = %v, want entry %q and rule %q", err, tc.entry, tc.rule)
			}
		})
	}
}

func TestValidateBrokenArchives(t *testing.T) {
	t.Parallel()
	good := tarGz(t, file("app", strings.Repeat("hello ", 100)))
	goodZip := zipOf(t, file("app", strings.Repeat("hello ", 100)))
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		return c
	}
	tests := []struct {
		name string
		data []byte
		rule string
	}{
		{"empty file", nil, "the file is empty"},
		{"text", []byte("zip bytes 1\n"), "not a zip or tar.gz archive"},
		{"truncated tar.gz", good[:len(good)/2], "does not parse"},
		{"tar.gz without its trailer", good[:len(good)-4], "does not parse to its end"},
		{"tar.gz with a bad checksum", flip(good, len(good)-6), "does not parse to its end"},
		{"tar.gz then garbage", append(bytes.Clone(good), "garbage"...), "does not parse to its end"},
		{"gzip of text", gzipOf(t, "just text, no tar"), "the tar stream does not parse"},
		{"zip without its central directory", goodZip[:len(goodZip)-30], "the zip does not parse"},
		{"zip with a bad checksum", flip(storedZip(t, "app", "hello"), 33), "cannot be read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Validate(bytes.NewReader(tc.data), int64(len(tc.data)), Limits{})
			if err == nil || !strings.Contains(err.Error(), tc.rule) {
				t.Errorf("err = %v, want %q", err, tc.rule)
			}
		})
	}
}

// storedZip is a zip of one uncompressed file: its bytes start at offset
// 30+len(name).
func storedZip(tb testing.TB, name, body string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = w.Write([]byte(body))
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(tb testing.TB, s string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, _ = gz.Write([]byte(s))
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// outside lists what exists under top but not inside dir (and is not one
// of dir's parents or keep).
func outside(t *testing.T, top, dir string, keep ...string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(top, func(p string, _ fs.DirEntry, _ error) error {
		if p == top || p == dir || strings.HasPrefix(dir, p+string(filepath.Separator)) || strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return nil
		}
		for _, k := range keep {
			if p == k {
				return nil
			}
		}
		out = append(out, p)
		return nil
	})
	return out
}

// releaseDir makes top/x1/x2/x3/rel, deep enough for ../../.. to stay in top.
func releaseDir(t *testing.T) (top, dir string) {
	t.Helper()
	top = t.TempDir()
	dir = filepath.Join(top, "x1", "x2", "x3", "rel")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return top, dir
}

func TestUnpack(t *testing.T) {
	t.Parallel()
	for name, build := range map[string]func(testing.TB, ...ent) []byte{"tar.gz": tarGz, "zip": zipOf} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			top, dir := releaseDir(t)
			data := build(t, dir0(), ent{Name: "bin/app", Body: "#!/bin/sh\n", Mode: 0o755}, file("static/i.html", "<h1>"),
				link("current", "bin/app"), link("bin/static", "../static"))
			sum, err := Unpack(bytes.NewReader(data), int64(len(data)), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Files != 2 || sum.Size != int64(len("#!/bin/sh\n<h1>")) {
				t.Errorf("summary %+v", sum)
			}
			if fi, err := os.Stat(filepath.Join(dir, "bin/app")); err != nil || fi.Mode().Perm()&0o100 == 0 {
				t.Errorf("bin/app: %v, %v: want it executable", fi, err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "bin/static/i.html")); err != nil || string(b) != "<h1>" {
				t.Errorf("bin/static/i.html through the link = %q, %v", b, err)
			}
			if l, err := os.Readlink(filepath.Join(dir, "current")); err != nil || l != "bin/app" {
				t.Errorf("current -> %q, %v", l, err)
			}
			if out := outside(t, top, dir); len(out) > 0 {
				t.Errorf("written outside: %v", out)
			}
		})
	}
}

func dir0() ent { return dir("./") }

// TestUnpackRefusedLeavesNothing: a refused archive writes nothing
// outside, and leaves the release folder empty, also when the rule is
// broken half-way through (after files were written).
func TestUnpackRefusedLeavesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data func(testing.TB) []byte
		opts Options
		want string
	}{
		{"tar.gz chained symlinks", func(tb testing.TB) []byte { return tarGz(tb, chain()...) }, Options{}, "goes through the symlink"},
		{"zip chained symlinks", func(tb testing.TB) []byte { return zipOf(tb, chain()...) }, Options{}, "goes through the symlink"},
		{"zip bomb", func(tb testing.TB) []byte { return zipOf(tb, zeros("z", 64<<20)) }, Options{}, "compression ratio past 200:1"},
		{"too big", func(tb testing.TB) []byte { return tarGz(tb, file("a", "x"), zeros("z", 2<<20)) }, Options{Limits: Limits{MaxSize: 1 << 20}}, "unpacked size past 1.0 MiB"},
		{"disk full", func(tb testing.TB) []byte { return tarGz(tb, file("a", "x")) }, Options{FreeSpace: func(string) (uint64, error) { return 1 << 20, nil }}, "only 1.0 MiB is free"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			top, dir := releaseDir(t)
			data := tc.data(t)
			_, err := Unpack(bytes.NewReader(data), int64(len(data)), dir, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if out := outside(t, top, dir); len(out) > 0 {
				t.Errorf("written outside: %v", out)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("%d entries left in the release folder", len(left))
			}
		})
	}
}

// swapped serves one archive, then another of the same size once swap is
// set: the archive changed under oops between validation and unpacking.
type swapped struct {
	first, then []byte
	swap        bool
}

func (s *swapped) ReadAt(p []byte, off int64) (int, error) {
	b := s.first
	if s.swap {
		b = s.then
	}
	return bytes.NewReader(b).ReadAt(p, off)
}

// TestUnpackFailsHalfWay: the unpacking pass applies the rules again, and
// a refusal after files were written empties the release folder.
func TestUnpackFailsHalfWay(t *testing.T) {
	t.Parallel()
	top, dir := releaseDir(t)
	good := zipOf(t, file("a", "x"), file("bb/c", "y"))
	evil := zipOf(t, file("a", "x"), file("../c", "y"))
	if len(evil) != len(good) {
		t.Fatalf("test archives differ in size: %d, %d", len(good), len(evil))
	}
	r := &swapped{first: good, then: evil}
	opts := Options{FreeSpace: func(string) (uint64, error) { r.swap = true; return 1 << 40, nil }}
	_, err := Unpack(r, int64(len(good)), dir, opts)
	if err == nil || !strings.Contains(err.Error(), "leads outside the release folder") {
		t.Errorf("err = %v, want the second pass to refuse ../c", err)
	}
	if out := outside(t, top, dir); len(out) > 0 {
		t.Errorf("written outside: %v", out)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("%d entries left in the release folder", len(left))
	}
}
