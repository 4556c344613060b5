//go:build !unix

package local

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
)

// The local target needs sessions, process groups and flock: unix only.
// These stubs keep the rest of oops building elsewhere.

var errUnsupported = errors.New("the local target needs a unix system (Linux, macOS, BSD)")

func detach(*exec.Cmd)                       {}
func procAlive(pid int, _ string) bool       { return false }
func procStartTime(int) string               { return "" }
func signalGroup(int, syscall.Signal) error  { return errUnsupported }
func tryLock(string) (*os.File, bool, error) { return nil, false, errUnsupported }

func textBusy(error) bool { return false }

// connAlive cannot peek here: a request that cannot be retried dials anew.
func connAlive(net.Conn) bool { return false }

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

func fileOwner(os.FileInfo) (int, bool) { return 0, false }

// peekReady cannot look here: the buffered read waits instead.
func peekReady(uintptr, []byte) bool { return true }

// raiseOpenFiles: the limit is unknown here.
func raiseOpenFiles() (limit, raisedFrom uint64) { return 0, 0 }
