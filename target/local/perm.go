package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// UnsafeStateError is a state directory, or a file in it, that another
// user could change: the color records name the command the proxy runs
// (as its own user) when it restarts a color, and the release directories
// hold what it runs. oops refuses to use it until Fix is run.
type UnsafeStateError struct {
	Path string
	Why  string
	// Fix is the command that makes it private again.
	Fix string
}

func (e *UnsafeStateError) Error() string {
	return fmt.Sprintf("state directory is not private: %s %s, so another user could make oops run their command as you", e.Path, e.Why)
}

// Hint is printed under the error.
func (e *UnsafeStateError) Hint() string {
	return "make it private to your user: " + e.Fix
}

// CheckStateDir refuses a state directory, a file in it, the releases
// directory or a release directory that is writable by group or others or
// owned by another user. A directory that does not exist yet is fine: oops
// creates it 0700.
func CheckStateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check state directory: %w", err)
	}
	if err := checkPrivate(dir, fi); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("check state directory: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			continue // removed meanwhile
		}
		if err := checkPrivate(p, fi); err != nil {
			return err
		}
		if e.Name() != releaseDir || !fi.IsDir() {
			continue
		}
		rels, err := os.ReadDir(p)
		if err != nil {
			return fmt.Errorf("check state directory: %w", err)
		}
		for _, r := range rels {
			rp := filepath.Join(p, r.Name())
			if fi, err := os.Lstat(rp); err == nil {
				if err := checkPrivate(rp, fi); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkPrivate refuses fi (at p) when others can write it or it is not
// ours.
func checkPrivate(p string, fi fs.FileInfo) error {
	mode := "600"
	if fi.IsDir() {
		mode = "700"
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return &UnsafeStateError{Path: p, Why: fmt.Sprintf("is owned by user id %d, not by you (%d)", uid, os.Geteuid()),
			Fix: fmt.Sprintf("chown -R %d %s && chmod %s %s (or give this .oopsrc its own state-dir)", os.Geteuid(), p, mode, p)}
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil // the link's own mode means nothing; its target is checked where oops opens it
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		who := "others"
		if perm&0o002 == 0 {
			who = "its group"
		}
		return &UnsafeStateError{Path: p, Why: fmt.Sprintf("is writable by %s (mode %04o)", who, perm), Fix: fmt.Sprintf("chmod %s %s", mode, p)}
	}
	return nil
}
