package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// archiveCmds build release archives in scripts, byte for byte the same on
// every run (fixed times), the format chosen by FILE's extension (.zip,
// .tar.gz, .tgz):
//
//	archive FILE SPEC...  an archive of SPECs: NAME:TEXT a file holding
//	                      TEXT, NAME:zeros=N a file of N MiB of zeros
//	                      (a bomb), NAME->TARGET a symlink, NAME/ a folder
//	pack FILE...          turns each FILE into an archive of its extension
//	                      holding one file, app.txt, with FILE's bytes
func archiveCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"archive": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) < 1 {
				ts.Fatalf("usage: archive FILE SPEC...")
			}
			var es []scriptEntry
			for _, spec := range args[1:] {
				es = append(es, parseSpec(ts, spec))
			}
			ts.Check(os.WriteFile(ts.MkAbs(args[0]), buildArchive(ts, args[0], es), 0o644))
		},
		"pack": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) < 1 {
				ts.Fatalf("usage: pack FILE...")
			}
			for _, name := range args {
				body, err := os.ReadFile(ts.MkAbs(name))
				ts.Check(err)
				data := buildArchive(ts, name, []scriptEntry{{name: "app.txt", body: body}})
				ts.Check(os.WriteFile(ts.MkAbs(name), data, 0o644))
			}
		},
	}
}

type scriptEntry struct {
	name, link string
	body       []byte
	dir        bool
}

func parseSpec(ts *testscript.TestScript, spec string) scriptEntry {
	if name, target, ok := strings.Cut(spec, "->"); ok {
		return scriptEntry{name: name, link: target}
	}
	if name, text, ok := strings.Cut(spec, ":"); ok {
		if n, isZeros := strings.CutPrefix(text, "zeros="); isZeros {
			mib, err := strconv.Atoi(n)
			ts.Check(err)
			return scriptEntry{name: name, body: make([]byte, mib<<20)}
		}
		return scriptEntry{name: name, body: []byte(text)}
	}
	if strings.HasSuffix(spec, "/") {
		return scriptEntry{name: spec, dir: true}
	}
	ts.Fatalf("archive: %q is not NAME:TEXT, NAME->TARGET or NAME/", spec)
	return scriptEntry{}
}

func buildArchive(ts *testscript.TestScript, file string, es []scriptEntry) []byte {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	if strings.HasSuffix(file, ".zip") {
		zw := zip.NewWriter(&buf)
		for _, e := range es {
			h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: at}
			mode, body := fs.FileMode(0o644), e.body
			switch {
			case e.dir:
				mode = fs.ModeDir | 0o755
			case e.link != "":
				mode, body = fs.ModeSymlink|0o777, []byte(e.link)
			}
			h.SetMode(mode)
			w, err := zw.CreateHeader(h)
			ts.Check(err)
			_, err = w.Write(body)
			ts.Check(err)
		}
		ts.Check(zw.Close())
		return buf.Bytes()
	}
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: at}
		switch {
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		ts.Check(tw.WriteHeader(h))
		_, err := tw.Write(e.body)
		ts.Check(err)
	}
	ts.Check(tw.Close())
	ts.Check(gz.Close())
	return buf.Bytes()
}
