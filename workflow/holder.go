package workflow

import (
	"fmt"
	"time"

	"github.com/oops-deploy/oops/store"
)

// HolderGone says whether a lock's holder is known to be gone: it stopped
// heartbeating, or it ran on this host and its process no longer exists.
func (r *Runner) HolderGone(info store.LockInfo, now time.Time) (bool, string) {
	if info.Stale(now) {
		return true, fmt.Sprintf("its heartbeat stopped %s ago", now.Sub(info.Heartbeat).Round(time.Second))
	}
	return r.HolderExited(info)
}

// HolderExited reports a holder that ran on this host, in this process-id
// space, and whose process no longer exists (killed, or its terminal
// closed): its lock need not wait out the TTL. Containers sharing a host
// name but not a pid namespace never match.
func (r *Runner) HolderExited(info store.LockInfo) (bool, string) {
	_, host := r.d.Who()
	ns := pidNamespace()
	if host == "" || host != info.Host || ns == "" || ns != info.PIDNS || info.PID <= 0 || processAlive(info.PID) {
		return false, ""
	}
	return true, fmt.Sprintf("its process %d on this host has exited", info.PID)
}
