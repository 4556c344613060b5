package local

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The idle parker: a keep-alive connection idle past the grace period
// gives up its goroutine (at least a 4 KB stack, which Go never shrinks
// below) and waits in one epoll set per server instead. The parker's one
// goroutine starts serveConn again when the client sends a byte or hangs
// up, and closes what stayed quiet past the idle timeout.
//
// Ownership: a parked connection belongs to the parker's map. Whoever
// takes it out of the map (a wake-up, the idle sweep, or stop) owns it,
// so it is served again or finished exactly once.

// parker holds one server's parked connections.
type parker struct {
	s     *server
	grace time.Duration
	sweep time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
	broken  bool // epoll could not be set up: park nothing
	epfd    int
	wakefd  int // eventfd that stops the loop
	next    uint64
	conns   map[uint64]*clientConn
}

// stopToken is the epoll data of wakefd; connection tokens start at 1.
const stopToken = 0

func newParker(s *server) *parker {
	o := &s.p.opts
	grace := o.idleGrace
	if grace <= 0 {
		grace = defaultIdleGrace
	}
	// The sweep is a scan of the map: an eighth of the idle timeout late
	// at most, and at most once a second.
	sweep := min(max(o.IdleTimeout/8, 5*time.Millisecond), time.Second)
	return &parker{s: s, grace: grace, sweep: sweep, next: stopToken + 1, conns: map[uint64]*clientConn{}}
}

// startLocked creates the epoll set and its goroutine, the first time a
// connection is parked.
func (pk *parker) startLocked() bool {
	if pk.started {
		return !pk.broken
	}
	pk.started = true
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		pk.broken = true
		pk.s.p.opts.Logf("proxy: epoll_create: %v: idle connections keep their goroutine", err)
		return false
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err == nil {
		ev := unix.EpollEvent{Events: unix.EPOLLIN}
		setToken(&ev, stopToken)
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev)
		if err != nil {
			unix.Close(wakefd)
		}
	}
	if err != nil {
		unix.Close(epfd)
		pk.broken = true
		pk.s.p.opts.Logf("proxy: eventfd: %v: idle connections keep their goroutine", err)
		return false
	}
	pk.epfd, pk.wakefd = epfd, wakefd
	go pk.loop()
	return true
}

// setToken and token keep a 64-bit token in the epoll data (never the fd
// number: a number closed and reused must not be taken for the old one).
func setToken(ev *unix.EpollEvent, t uint64) {
	ev.Fd, ev.Pad = int32(uint32(t)), int32(uint32(t>>32))
}

func token(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// park hands the idle connection cc, which holds no buffer, to the
// parker until cc.idleBy (which nothing changes while cc is parked:
// its goroutine is gone). It reports false when cc was not parked (stopped,
// no epoll, or cc closed meanwhile): the caller keeps it.
func (pk *parker) park(cc *clientConn) bool {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.stopped || !pk.startLocked() {
		return false
	}
	t := pk.next
	pk.next++
	var cerr error
	// Control holds the descriptor open while it is registered.
	err := cc.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
		setToken(&ev, t)
		cerr = unix.EpollCtl(pk.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		return false
	}
	pk.conns[t] = cc
	return true
}

// parkedCount is how many connections are parked (for tests).
func (pk *parker) parkedCount() int {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return len(pk.conns)
}

// loop waits for parked connections to become readable, and sweeps out
// those idle past their deadline, until stop.
func (pk *parker) loop() {
	defer func() {
		unix.Close(pk.wakefd)
		unix.Close(pk.epfd)
	}()
	events := make([]unix.EpollEvent, 128)
	nextSweep := time.Now().Add(pk.sweep)
	var wake []*clientConn
	for {
		n, err := unix.EpollWait(pk.epfd, events, int(pk.sweep/time.Millisecond))
		if err != nil && !errors.Is(err, syscall.EINTR) {
			pk.s.p.opts.Logf("proxy: epoll_wait: %v", err)
			time.Sleep(pk.sweep) // not a busy loop; stop still works
		}
		wake = wake[:0]
		pk.mu.Lock()
		for i := range max(n, 0) {
			// Gone already (swept or stopped): a stale event.
			if t := token(&events[i]); t != stopToken {
				if cc := pk.conns[t]; cc != nil {
					delete(pk.conns, t)
					wake = append(wake, cc)
				}
			}
		}
		stopped := pk.stopped
		pk.mu.Unlock()
		// What was taken out of the map is served even when stopping:
		// serveConn sees the shutdown and finishes it.
		for _, cc := range wake {
			// Unregister, so the connection can be parked again; Control
			// fails if shutdown closed it meanwhile (then the close
			// unregistered it).
			_ = cc.rc.Control(func(fd uintptr) {
				_ = unix.EpollCtl(pk.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
			})
			go pk.s.serveConn(cc)
		}
		if stopped {
			return
		}
		if now := time.Now(); !now.Before(nextSweep) {
			nextSweep = now.Add(pk.sweep)
			pk.expire(now)
		}
	}
}

// expire closes the connections idle past their deadline, without a word.
func (pk *parker) expire(now time.Time) {
	var gone []*clientConn
	pk.mu.Lock()
	for t, cc := range pk.conns {
		if !now.Before(cc.idleBy) {
			delete(pk.conns, t)
			gone = append(gone, cc)
		}
	}
	pk.mu.Unlock()
	for _, cc := range gone {
		cc.state.CompareAndSwap(connIdle, connClosed)
		pk.s.finish(cc)
	}
}

// stop closes every parked connection at once and ends the loop; nothing
// is parked afterwards.
func (pk *parker) stop() {
	pk.mu.Lock()
	pk.stopped = true
	conns := pk.conns
	pk.conns = map[uint64]*clientConn{}
	if pk.started && !pk.broken {
		var one = [8]byte{1}
		_, _ = unix.Write(pk.wakefd, one[:])
	}
	pk.mu.Unlock()
	for _, cc := range conns {
		cc.state.CompareAndSwap(connIdle, connClosed)
		pk.s.finish(cc)
	}
}

// defaultIdleGrace is how long an idle connection keeps its goroutine:
// long enough that a client sending request after request never parks.
const defaultIdleGrace = time.Second
