package archive

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidate: whatever the bytes, Validate does not panic, and it agrees
// with Unpack: an archive it refuses leaves the release folder empty, and
// one it accepts unpacks to files, folders and symlinks that all resolve
// inside the release folder, with nothing written next to it.
//
//	go test -run '^$' -fuzz FuzzValidate -fuzztime 1m ./release/archive/
func FuzzValidate(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	lim := Limits{MaxSize: 1 << 20, MaxEntries: 200, MaxRatio: 50}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, verr := Validate(bytes.NewReader(data), int64(len(data)), lim)
		top := t.TempDir()
		dir := filepath.Join(top, "a", "b", "c", "rel")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, uerr := Unpack(bytes.NewReader(data), int64(len(data)), dir, Options{Limits: lim, FreeSpace: func(string) (uint64, error) { return 1 << 40, nil }})
		if out := outside(t, top, dir); len(out) > 0 {
			t.Fatalf("written outside the release folder: %v", out)
		}
		if verr != nil {
			var ae *Error
			if !errors.As(verr, &ae) {
				t.Fatalf("Validate: %v is not an *Error", verr)
			}
			if uerr == nil {
				t.Fatalf("Validate refused (%v), Unpack accepted", verr)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Fatalf("refused archive left %d entries", len(left))
			}
			return
		}
		if uerr != nil {
			t.Fatalf("Validate accepted, Unpack refused: %v", uerr)
		}
		realDir, _ := filepath.EvalSymlinks(dir)
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				// A link may dangle, but what it reaches must be inside.
				if r, err := filepath.EvalSymlinks(p); err == nil && r != realDir && !strings.HasPrefix(r, realDir+string(filepath.Separator)) {
					t.Errorf("symlink %s resolves to %s, outside %s", p, r, realDir)
				}
			case d.Type().IsRegular(), d.IsDir():
			default:
				t.Errorf("%s has type %v", p, d.Type())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzSeeds are the attacks of issue 11 and their neighbours, each a few
// hundred bytes (the bombs a few KiB).
func fuzzSeeds(tb testing.TB) [][]byte {
	good := tarGz(tb, dir("bin"), ent{Name: "bin/app", Body: "#!/bin/sh\n", Mode: 0o755}, link("current", "bin/app"))
	goodZip := zipOf(tb, file("app", "hi"), link("l", "app"))
	seeds := [][]byte{
		good, goodZip,
		tarGz(tb, chain()...), zipOf(tb, chain()...),
		tarGz(tb, file("app", "x"), link("s", "."), link("t", "s/s/s/..")),
		zipOf(tb, file("app", "x"), link("s", "t/x"), link("t", "s/y")),
		tarGz(tb, file("../evil", "x")), zipOf(tb, file(`a\..\..\evil`, "x")),
		tarGz(tb, file("/etc/evil", "x")), zipOf(tb, file("app", "x"), link("l", "/etc/passwd")),
		tarGz(tb, file("app", "x"), ent{Name: "h", Type: '1', Link: "app"}),
		tarGz(tb, ent{Name: "dev", Type: '3'}),
		tarGz(tb, file("app", "1"), file("app", "2")), zipOf(tb, file("a", "1"), file("a/b", "2")),
		zipOf(tb, zeros("z", 2<<20)), tarGz(tb, zeros("z", 2<<20)),
		good[:len(good)/2], good[:len(good)-4], goodZip[:len(goodZip)-22],
		zipOf(tb), tarGz(tb), {}, []byte("zip bytes 1\n"),
		// Accepted, then refused by the kernel at unpack (ENAMETOOLONG).
		tarGz(tb, file(strings.Repeat("n", 256), "x")),
		zipOf(tb, file("app", "x"), link("l", strings.Repeat("./", 2046)+"/app")),
	}
	return seeds
}
