package listbench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/oops-deploy/oops/internal/faultproxy"
)

// meter is a reverse proxy that records each request: its action, the
// body bytes both ways, and when it started and ended as the client saw
// it (so put it first, before any proxy that adds delay).
type meter struct {
	URL    string
	server *httptest.Server
	rp     *httputil.ReverseProxy

	mu   sync.Mutex
	reqs []metered
}

type metered struct {
	action     string
	sent, recv int64
	start, end time.Time
}

func newMeter(upstream string) *meter {
	u, err := url.Parse(upstream)
	if err != nil {
		panic(err)
	}
	m := &meter{rp: httputil.NewSingleHostReverseProxy(u)}
	m.server = httptest.NewServer(http.HandlerFunc(m.serve))
	m.URL = m.server.URL
	return m
}

func (m *meter) Close() { m.server.CloseClientConnections(); m.server.Close() }

func (m *meter) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	action := faultproxy.ActionOf(r, body)
	cw := &countingWriter{ResponseWriter: w}
	m.rp.ServeHTTP(cw, r)
	end := time.Now()
	m.mu.Lock()
	m.reqs = append(m.reqs, metered{action: action, sent: int64(len(body)), recv: cw.n, start: start, end: end})
	m.mu.Unlock()
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (m *meter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reqs = nil
}

// traffic sums what was recorded since the last reset.
type traffic struct {
	requests   int
	byAction   map[string]int
	sent, recv int64
	// rounds is the longest chain of requests each of which started
	// after the one before it ended: the sequential round trips.
	rounds int
}

func (t traffic) String() string {
	keys := make([]string, 0, len(t.byAction))
	for k := range t.byAction {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d", k, t.byAction[k])
	}
	return b.String()
}

func (m *meter) traffic() traffic {
	m.mu.Lock()
	reqs := append([]metered(nil), m.reqs...)
	m.mu.Unlock()
	t := traffic{requests: len(reqs), byAction: map[string]int{}}
	for _, r := range reqs {
		t.byAction[r.action]++
		t.sent += r.sent
		t.recv += r.recv
	}
	t.rounds = rounds(reqs)
	return t
}

// rounds is the length of the longest chain of requests that did not
// overlap, each starting after the previous one ended.
func rounds(reqs []metered) int {
	byStart := append([]metered(nil), reqs...)
	sort.Slice(byStart, func(i, j int) bool { return byStart[i].start.Before(byStart[j].start) })
	// Ended requests, by end time, with the best chain ending at each.
	type ended struct {
		end   time.Time
		depth int
	}
	var done []ended // kept sorted by end
	best := 0
	for _, r := range byStart {
		d := 1
		for _, e := range done {
			if !e.end.After(r.start) && e.depth+1 > d {
				d = e.depth + 1
			}
		}
		i := sort.Search(len(done), func(i int) bool { return done[i].end.After(r.end) })
		done = append(done, ended{})
		copy(done[i+1:], done[i:])
		done[i] = ended{r.end, d}
		best = max(best, d)
	}
	return best
}
