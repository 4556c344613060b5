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

// chainEntries is the attack of issue 11: a/b -> .. is inside, then a
// deep path through it creates c -> ../../.. (lexically inside, really
// three folders above the release), then c/escaped lands outside.
func chainEntries() []entry {
	return []entry{
		{Name: "a/b", Link: ".."},
		{Name: "a/b/a/b/a/b/c", Link: "../../.."},
		{Name: "c/escaped", Body: "owned", Mode: 0o644},
		{Name: "app", Body: "real", Mode: 0o755},
	}
}

// TestUnpackStaysInside: whatever came before, no entry writes outside the
// release folder, and a refused archive leaves nothing in it.
func TestUnpackStaysInside(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		archive []byte
	}{
		{"tar.gz chained symlinks", tarGz(t, chainEntries())},
		{"zip chained symlinks", zipOf(t, chainEntries())},
		{"tar.gz duplicate file", tarGz(t, []entry{{Name: "app", Body: "one", Mode: 0o644}, {Name: "app", Body: "two", Mode: 0o644}})},
		{"zip duplicate file", zipOf(t, []entry{{Name: "app", Body: "one", Mode: 0o644}, {Name: "./app", Body: "two", Mode: 0o644}})},
		{"empty zip", zipOf(t, nil)},
		{"tar.gz of only a folder", tarGz(t, []entry{{Name: "bin/", Dir: true, Mode: 0o755}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			top := t.TempDir()
			dir := filepath.Join(top, "x1", "x2", "x3", "rel")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(top, "artifact")
			if err := os.WriteFile(file, tc.archive, 0o600); err != nil {
				t.Fatal(err)
			}
			err := unpack(file, dir, archive.Options{})
			if err == nil {
				t.Error("unpack accepted the archive")
			}
			var outside []string
			_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, _ error) error {
				if p == top || p == file || p == dir || strings.HasPrefix(dir, p+string(filepath.Separator)) {
					return nil
				}
				if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
					outside = append(outside, p)
				}
				return nil
			})
			if len(outside) > 0 {
				t.Errorf("written outside the release folder: %v", outside)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("a refused archive left %d entries in the release folder", len(left))
			}
		})
	}
}

// bombZip is a zip of a few hundred KiB that unpacks to n MiB of zeros.
func bombZip(t *testing.T, mib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("zeros")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range mib {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombTarGz is the same as a tar.gz.
func bombTarGz(t *testing.T, mib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: int64(mib) << 20, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for range mib {
		if _, err := tw.Write(chunk); err != nil {
			t.Fatal(err)
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

// TestUnpackRefusesBombs: an archive that unpacks to 1000 times its size
// is refused before anything is written, by the default 200:1 ratio.
func TestUnpackRefusesBombs(t *testing.T) {
	t.Parallel()
	for name, data := range map[string][]byte{"zip": bombZip(t, 64), "tar.gz": bombTarGz(t, 64)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			top := t.TempDir()
			file := filepath.Join(top, "artifact")
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(top, "rel")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := unpack(file, dir, archive.Options{}); err == nil || !strings.Contains(err.Error(), "ratio") {
				t.Errorf("%d-byte bomb: err = %v, want the compression ratio refused", len(data), err)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("a refused archive left %d entries in the release folder", len(left))
			}
		})
	}
}
