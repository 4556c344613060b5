//go:build unix

package local

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// detach starts the command in its own session, so it outlives the oops
// command that started it and a Ctrl-C on that terminal does not reach it.
func detach(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

// procAlive reports whether pid is still the process oops started: it exists,
// is not a zombie, and (where the OS tells) started when recorded, so a
// recycled pid is not mistaken for it.
func procAlive(pid int, start string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	state, st := procStat(pid)
	if state == "Z" || state == "X" {
		return false
	}
	if start != "" && st != "" && st != start {
		return false
	}
	return true
}

// procStartTime is the start time of pid as the OS records it ("" where it
// can't be read): with the pid it identifies one process for good.
func procStartTime(pid int) string {
	_, st := procStat(pid)
	return st
}

// procStat reads the state letter and start time of pid from /proc (Linux);
// elsewhere both are empty and callers fall back to the pid alone.
func procStat(pid int) (state, start string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", ""
	}
	// The command name (field 2) may contain spaces: fields restart after ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", ""
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return "", ""
	}
	return f[0], f[19]
}

// signalGroup signals the process group pid leads (the app and anything it
// forked), falling back to the process alone.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err == nil {
		return nil
	}
	return syscall.Kill(pid, sig)
}

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// tryLock takes an exclusive advisory lock on path without waiting. held is
// false when another process has it. The lock goes when f is closed or the
// process dies, so a crashed proxy never leaves it behind.
func tryLock(path string) (f *os.File, held bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return f, true, nil
}

// connAlive reports whether an idle app connection can still carry a
// request: the app has not closed it (a peeked read would see EOF) and has
// sent nothing unasked. It never blocks.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		alive = !peekReady(fd, b[:]) // nothing to read, not even EOF
		return true
	})
	return err == nil && alive
}

// textBusy: exec found the program still open for writing, typically by a
// process forked elsewhere in this program while the release was being
// unpacked (go.dev/issue/22315); it goes away on its own.
func textBusy(err error) bool { return errors.Is(err, syscall.ETXTBSY) }

// fileOwner is the user id owning fi.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// peekReady reports whether a read on fd would not wait: data or EOF is
// there, or an error. It reads nothing (b is scratch space).
func peekReady(fd uintptr, b []byte) bool {
	_, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK)
}

// raiseOpenFiles raises the soft limit on open files to the hard one (Go
// does so at start on most systems; a limit lowered since is raised here)
// and returns the limit in force, and the one before when it was raised.
func raiseOpenFiles() (limit, raisedFrom uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0
	}
	// Rlimit fields are uint64 on Linux and macOS, int64 on the BSDs.
	if lim.Cur >= lim.Max {
		return uint64(lim.Cur), 0
	}
	was := uint64(lim.Cur)
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return was, 0 // macOS refuses more than OPEN_MAX: keep what there is
	}
	return uint64(lim.Cur), was
}
