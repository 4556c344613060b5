package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oops-deploy/oops/release"
)

// Leftover is a file or directory an interrupted deploy or state write
// left in the state directory.
type Leftover struct {
	Path     string
	What     string
	Size     int64
	Modified time.Time
}

// leftoverPatterns name what a deploy or a state write stages under a
// temporary name before renaming it into place (fetchAndUnpack,
// writeJSONAtomic): one that was killed leaves it behind.
var leftoverPatterns = []struct{ dir, prefix, what string }{
	{releaseDir, ".unpack-", "half-unpacked release of an interrupted deploy"},
	{releaseDir, ".artifact-", "downloaded artifact of an interrupted deploy"},
	{"", ".blue.", "temporary state file of an interrupted write"},
	{"", ".green.", "temporary state file of an interrupted write"},
	{"", "." + liveFile + ".", "temporary state file of an interrupted write"},
}

// Leftovers lists temporary files and directories last modified before
// olderThan (younger ones may belong to a deploy still running).
func (t *Target) Leftovers(olderThan time.Time) ([]Leftover, error) {
	var out []Leftover
	// A color's records below its highest generation are never read: one
	// written by a holder that had lost the lock, or not yet cleaned up.
	for _, c := range []release.Color{release.Blue, release.Green} {
		files, err := colorFiles(t.opts.StateDir, c)
		if err != nil {
			return nil, err
		}
		for _, f := range files[min(1, len(files)):] {
			fi, err := os.Stat(f.path)
			if err != nil || !fi.ModTime().Before(olderThan) {
				continue
			}
			out = append(out, Leftover{Path: f.path, What: fmt.Sprintf("%s state of an older lock generation (%d), superseded", c, f.gen), Size: fi.Size(), Modified: fi.ModTime()})
		}
	}
	for _, lp := range leftoverPatterns {
		dir := filepath.Join(t.opts.StateDir, lp.dir)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", dir, err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), lp.prefix) {
				continue
			}
			fi, err := e.Info()
			if err != nil || !fi.ModTime().Before(olderThan) {
				continue
			}
			out = append(out, Leftover{Path: filepath.Join(dir, e.Name()), What: lp.what, Size: fi.Size(), Modified: fi.ModTime()})
		}
	}
	return out, nil
}

// RemoveLeftover removes one path Leftovers returned, and nothing else.
func (t *Target) RemoveLeftover(path string) error {
	for _, lp := range leftoverPatterns {
		if filepath.Dir(path) == filepath.Join(t.opts.StateDir, lp.dir) && strings.HasPrefix(filepath.Base(path), lp.prefix) {
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove %s: %w", path, err)
			}
			return nil
		}
	}
	return fmt.Errorf("remove %s: not a leftover of %s", path, t)
}

// ProxyRunning reports whether `oops proxy` runs for this state directory.
// Without it nothing takes traffic on the public address: a switch only
// records the color the proxy will use when it starts.
func (t *Target) ProxyRunning(ctx context.Context) (bool, error) {
	ps, err := t.proxyStatus(ctx, false)
	if err != nil {
		return false, err
	}
	return ps != nil, nil
}
