//go:build !unix

package testport

import "os"

// lock creates path exclusively: without flock, a test binary that dies
// leaves its ports taken, which only narrows the choice.
func lock(path string) (unlock func(), ok bool) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, false
	}
	f.Close()
	return func() { os.Remove(path) }, true
}
