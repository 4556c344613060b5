// Package archivetest builds release archives for tests: the same bytes on
// every run, with any entry an attacker could put in one.
package archivetest

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

// Entry is one entry of a test archive: a file (body), a folder (dir), a
// symlink (link), or another tar type (typ).
type Entry struct {
	Name, Body, Link string
	Dir              bool
	Type             byte
	Mode             fs.FileMode
}

// File is a regular file.
func File(name, body string) Entry { return Entry{Name: name, Body: body, Mode: 0o644} }

// Link is a symlink.
func Link(name, to string) Entry { return Entry{Name: name, Link: to} }

// Dir is a folder.
func Dir(name string) Entry { return Entry{Name: name, Dir: true, Mode: 0o755} }

// Epoch is the time of every entry, so test archives are the same bytes on every run.
func Epoch() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) }

// TarGz is a tar.gz of es.
func TarGz(tb testing.TB, es ...Entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range es {
		h := &tar.Header{Name: e.Name, Mode: int64(e.Mode), Size: int64(len(e.Body)), Typeflag: tar.TypeReg, ModTime: Epoch()}
		switch {
		case e.Type == tar.TypeXGlobalHeader:
			h = &tar.Header{Typeflag: e.Type, Name: e.Name, PAXRecords: map[string]string{"comment": "oops"}}
		case e.Type != 0:
			h.Typeflag, h.Size, h.Linkname = e.Type, 0, e.Link
		case e.Dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.Link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.Link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
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

// Zip is a zip of es.
func Zip(tb testing.TB, es ...Entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range es {
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: Epoch()}
		mode, body := e.Mode, e.Body
		switch {
		case e.Type == tar.TypeChar:
			mode |= fs.ModeDevice | fs.ModeCharDevice
		case e.Dir:
			h.Name = strings.TrimSuffix(e.Name, "/") + "/"
			mode |= fs.ModeDir
		case e.Link != "":
			mode |= fs.ModeSymlink
			body = e.Link
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
