package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// ent is one entry of a test archive: a file (body), a folder (dir), a
// symlink (link), or another tar type (typ).
type ent struct {
	name, body, link string
	dir              bool
	typ              byte
	mode             fs.FileMode
}

func file(name, body string) ent { return ent{name: name, body: body, mode: 0o644} }
func link(name, to string) ent   { return ent{name: name, link: to} }
func dir(name string) ent        { return ent{name: name, dir: true, mode: 0o755} }

// epoch is the time of every entry, so test archives are the same bytes on every run.
func epoch() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) }

func tarGz(tb testing.TB, es ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: int64(e.mode), Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: epoch()}
		switch {
		case e.typ == tar.TypeXGlobalHeader:
			h = &tar.Header{Typeflag: e.typ, Name: e.name, PAXRecords: map[string]string{"comment": "oops"}}
		case e.typ != 0:
			h.Typeflag, h.Size, h.Linkname = e.typ, 0, e.link
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zipOf(tb testing.TB, es ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range es {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: epoch()}
		mode, body := e.mode, e.body
		switch {
		case e.typ == tar.TypeChar:
			mode |= fs.ModeDevice | fs.ModeCharDevice
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
			tb.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// zeros is a file entry of n bytes of zeros: a bomb for a few KiB.
func zeros(name string, n int) ent {
	return ent{name: name, body: string(make([]byte, n)), mode: 0o644}
}

// chain is the attack of issue 11: a/b -> .. is inside; a path through it
// creates c -> ../../.. (lexically a/b/a, really above the release); then
// c/escaped is written through it.
func chain() []ent {
	return []ent{
		link("a/b", ".."),
		link("a/b/a/b/a/b/c", "../../.."),
		file("c/escaped", "owned"),
		file("app", "real"),
	}
}
