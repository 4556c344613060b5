package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/oops-deploy/oops/release"
)

// Options are the settings of Unpack.
type Options struct {
	Limits Limits
	// FreeSpace reports the bytes available to unprivileged users on the
	// file system of dir; nil asks the operating system.
	FreeSpace func(dir string) (uint64, error)
}

// FreeSpaceMargin is kept free on top of the unpacked size: a release that
// fills the disk to the last byte would leave the host unable to log.
const FreeSpaceMargin = 64 << 20

// Unpack validates the archive (see Validate), checks that dir's file
// system has room for it, and extracts it into dir, an existing empty
// folder. Every write goes through an os.Root of dir and no entry goes
// through a symlink (the rules refuse it, and links are created last), so
// nothing can land outside dir whatever the archive holds. On any error
// dir is left empty.
func Unpack(r io.ReaderAt, size int64, dir string, opts Options) (sum Summary, err error) {
	sum, err = Validate(r, size, opts.Limits)
	if err != nil {
		return Summary{}, err
	}
	free := opts.FreeSpace
	if free == nil {
		free = freeSpace
	}
	if avail, ferr := free(dir); ferr == nil && uint64(sum.Size)+FreeSpaceMargin > avail {
		return Summary{}, fmt.Errorf("unpack to %s: needs %s plus %s to spare, and only %s is free: free some space (old releases, logs) and deploy again",
			dir, release.HumanSize(sum.Size), release.HumanSize(FreeSpaceMargin), release.HumanSize(int64(min(avail, 1<<62))))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Summary{}, fmt.Errorf("unpack: open release folder: %w", err)
	}
	defer root.Close()
	if ents, err := fs.ReadDir(root.FS(), "."); err != nil || len(ents) > 0 {
		return Summary{}, fmt.Errorf("unpack to %s: the release folder must exist and be empty (%d entries, %v)", dir, len(ents), err)
	}
	defer func() {
		if err != nil {
			emptyDir(root)
		}
	}()
	if _, err = walk(r, size, opts.Limits, rootSink{root}); err != nil {
		return Summary{}, fmt.Errorf("unpack to %s: %w", dir, err)
	}
	return sum, nil
}

// emptyDir removes everything in root, leaving it empty.
func emptyDir(root *os.Root) {
	ents, _ := fs.ReadDir(root.FS(), ".")
	for _, e := range ents {
		_ = root.RemoveAll(e.Name())
	}
}

// rootSink writes entries through an os.Root.
type rootSink struct{ root *os.Root }

func (s rootSink) dir(name string) error { return s.root.MkdirAll(name, 0o755) }

func (s rootSink) file(name string, perm fs.FileMode, body io.Reader) (int64, error) {
	if err := s.mkParent(name); err != nil {
		return 0, err
	}
	// O_EXCL: a path that exists (the rules refuse duplicates) is never
	// opened, so never followed if it were a link.
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", name, err)
	}
	n, err := io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var ae *Error
	if err != nil && !errors.As(err, &ae) {
		err = fmt.Errorf("write %s: %w", name, err)
	}
	return n, err
}

func (s rootSink) link(name, target string) error {
	if err := s.mkParent(name); err != nil {
		return err
	}
	return s.root.Symlink(target, name)
}

func (s rootSink) mkParent(name string) error {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == '/' {
			return s.root.MkdirAll(name[:i], 0o755)
		}
	}
	return nil
}
