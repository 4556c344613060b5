//go:build !windows

package dir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var errNotDir = syscall.ENOTDIR

// etagOf identifies one version of a file without reading it. Every write
// puts a new inode in place, so inode, size and mtime (ns) change with each
// version.
func etagOf(fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	return fmt.Sprintf("%x-%x-%x", ino, fi.Size(), fi.ModTime().UnixNano())
}

// lockFile takes an exclusive flock on path, waiting for other holders.
// The kernel drops it if the process dies, so a crash never leaves a key
// locked. A process that is stopped (SIGSTOP, Ctrl-Z) while it holds one
// does not die, so the wait is bounded by ctx and by maxLockWait: a write
// lock is held for one rename, so a longer wait means a stalled holder,
// and the caller must hear it rather than hang.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(maxLockWait)
	pause := time.Millisecond
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			break
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("another process has held %s for over %s without finishing its write (is an oops stopped? see: fuser %s)", path, maxLockWait, path)
			break
		}
		select {
		case <-ctx.Done():
			err = context.Cause(ctx)
		case <-time.After(pause):
			pause = min(2*pause, 20*time.Millisecond)
			continue
		}
		break
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
