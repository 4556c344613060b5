package local

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"
)

// heldConn holds the first far read deadline set on it (the one
// clientConn.Read sets as the body makes progress) until one in the past
// (the pump's stop) was set, to line them up in that order.
type heldConn struct {
	net.Conn
	once, stopOnce sync.Once
	held, stopped  chan struct{}
}

func (h *heldConn) SetReadDeadline(t time.Time) error {
	if time.Until(t) < 0 {
		err := h.Conn.SetReadDeadline(t)
		h.stopOnce.Do(func() { close(h.stopped) })
		return err
	}
	if time.Until(t) > time.Minute {
		h.once.Do(func() {
			close(h.held)
			<-h.stopped
		})
	}
	return h.Conn.SetReadDeadline(t)
}

// loopbackPair is both ends of a TCP connection on 127.0.0.1.
func loopbackPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestPumpFinishWinsOverAMovedDeadline: the pump waits for a body the
// client has not sent; the answer comes, and finish stops the pump just
// as clientConn.Read moves the read deadline a body timeout away. finish
// must still get the pump out at once, not after that timeout (the
// client, meanwhile, waits for its answer).
func TestPumpFinishWinsOverAMovedDeadline(t *testing.T) {
	_, clientSide := loopbackPair(t)
	_, appSide := loopbackPair(t)
	h := &heldConn{Conn: clientSide, held: make(chan struct{}), stopped: make(chan struct{})}
	cc := &clientConn{c: h, readTimeout: time.Hour, readBy: time.Now()}
	cc.connBufs = &connBufs{br: bufio.NewReader(cc), bw: bufio.NewWriter(cc)}
	cc.req.minor, cc.req.contentLength, cc.req.expectContinue = 1, 10, true
	ac := &appConn{c: appSide, br: bufio.NewReader(appSide)}
	ac.bw = bufio.NewWriter(ac)
	p := startPump(cc, ac, make([]byte, 4096), time.Hour)
	<-h.held // the pump's read is moving its deadline
	finished := make(chan error, 1)
	go func() {
		_, _, err := p.finish()
		finished <- err
	}()
	select {
	case err := <-finished:
		if err == nil {
			t.Fatal("the pump reported the body sent")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("finish waits for the pump's read, whose deadline moved an hour away")
	}
}
