package local

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// unpack extracts the archive in file (zip or tar.gz, recognised by content,
// not name) into dir, which must exist. Entries that would land outside dir
// (zip-slip), device files and links pointing out of dir are refused.
func unpack(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		return unzip(f, fi.Size(), dir)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return fmt.Errorf("read gzip: %w", err)
		}
		defer gz.Close()
		return untar(gz, dir)
	}
	return errors.New("not a zip or tar.gz archive")
}

// entryPath maps an archive entry name to a path inside dir, or fails.
func entryPath(dir, name string) (string, error) {
	rel := filepath.FromSlash(strings.ReplaceAll(name, `\`, "/"))
	if filepath.Clean(rel) == "." {
		return dir, nil
	}
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("archive entry %q points outside the release directory", name)
	}
	return filepath.Join(dir, rel), nil
}

func unzip(r io.ReaderAt, size int64, dir string) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("read zip: %w", err)
	}
	for _, zf := range zr.File {
		dst, err := entryPath(dir, zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			link, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			if err := symlinkInside(dir, dst, string(link)); err != nil {
				return err
			}
		case mode.IsRegular():
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			err = writeFile(dst, rc, zipPerm(zf))
			rc.Close()
			if err != nil {
				return fmt.Errorf("unpack %s: %w", zf.Name, err)
			}
		default:
			return fmt.Errorf("archive entry %q is not a file, directory or link", zf.Name)
		}
	}
	return nil
}

// zipPerm keeps the executable bit: zips made on Windows carry no unix mode,
// and then everything is 0644 (the command can still be a script run by an
// interpreter).
func zipPerm(zf *zip.File) fs.FileMode {
	p := zf.Mode().Perm()
	if p == 0 {
		return 0o644
	}
	return p
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		dst, err := entryPath(dir, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(dst, tr, fs.FileMode(h.Mode).Perm()); err != nil {
				return fmt.Errorf("unpack %s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			if err := symlinkInside(dir, dst, h.Linkname); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
			// PAX metadata, nothing to extract.
		default:
			return fmt.Errorf("archive entry %q has unsupported type %q (only files, directories and symlinks)", h.Name, h.Typeflag)
		}
	}
}

func writeFile(dst string, r io.Reader, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// symlinkInside creates dst -> link, refusing links that resolve outside dir.
func symlinkInside(dir, dst, link string) error {
	if filepath.IsAbs(link) {
		return fmt.Errorf("archive link %s -> %s points outside the release directory", dst, link)
	}
	resolved := filepath.Join(filepath.Dir(dst), link)
	if rel, err := filepath.Rel(dir, resolved); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("archive link %s -> %s points outside the release directory", dst, link)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.Symlink(link, dst)
}
