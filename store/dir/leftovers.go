package dir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oops-deploy/oops/store"
)

var _ store.LeftoverCleaner = (*Store)(nil)

// leftoverDirs are the bookkeeping folders where writes stage their
// temporary files, with the names those files get: a write that died
// (SIGKILL, a full disk, a power cut) leaves one behind.
var leftoverDirs = []struct{ dir, prefix string }{
	{"tmp", "obj-"},  // writeTemp: the body of Create and Replace
	{"meta", "tmp-"}, // writeSidecar: user metadata
}

// Leftovers lists temporary files of interrupted writes last modified
// before olderThan (younger ones may belong to a write still running).
func (s *Store) Leftovers(ctx context.Context, olderThan time.Time) ([]store.Leftover, error) {
	var out []store.Leftover
	for _, d := range leftoverDirs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := s.internal(d.dir)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", dir, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), d.prefix) {
				continue
			}
			fi, err := e.Info()
			if err != nil || !fi.ModTime().Before(olderThan) {
				continue
			}
			p := filepath.Join(dir, e.Name())
			out = append(out, store.Leftover{Name: p, What: "temporary file of an interrupted write to the directory store",
				Size: fi.Size(), Modified: fi.ModTime(), ID: p})
		}
	}
	return out, nil
}

// RemoveLeftover removes a file Leftovers returned, and nothing else.
func (s *Store) RemoveLeftover(_ context.Context, l store.Leftover) error {
	ok := false
	for _, d := range leftoverDirs {
		if filepath.Dir(l.ID) == s.internal(d.dir) && strings.HasPrefix(filepath.Base(l.ID), d.prefix) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("remove %s: not a temporary file of %s", l.ID, s)
	}
	if err := os.Remove(l.ID); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", l.ID, err)
	}
	return nil
}
