//go:build unix

package workflow

import (
	"errors"
	"os"
	"runtime"
	"syscall"
)

// processAlive reports whether a process with this id exists on this host.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// pidNamespace names the space process ids live in: the pid namespace on
// Linux (containers have their own), the host elsewhere; "" when unknown.
func pidNamespace() string {
	if runtime.GOOS != "linux" {
		return "host"
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return ns
}
