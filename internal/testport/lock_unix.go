//go:build unix

package testport

import (
	"os"

	"golang.org/x/sys/unix"
)

// lock takes an exclusive flock on path. A lock is per open file, so it
// excludes other goroutines of this process as well as other processes, and
// the kernel drops it when a test binary dies.
func lock(path string) (unlock func(), ok bool) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
