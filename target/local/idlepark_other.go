//go:build !linux

package local

import "time"

// parker is Linux only (epoll): elsewhere an idle connection keeps its
// goroutine, waiting in the runtime's poller.
type parker struct{ grace time.Duration }

func newParker(*server) *parker { return &parker{} }

func (*parker) park(*clientConn) bool { return false }

func (*parker) parkedCount() int { return 0 }

func (*parker) stop() {}
