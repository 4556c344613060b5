package local

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oops-deploy/oops/target"
)

// Per-color request metrics. The data path counts each request once, when
// its exchange ends (forward), with a few atomic adds and no allocation or
// lock: counters per status class, a latency histogram with fixed buckets,
// and a ring of one-second slots for the last minute (oops status). The
// admin socket and a Prometheus scrape read them; neither touches the data
// path.
//
// What is counted is what the client got: the app's final status, or the
// proxy's own answer (a 502 when the color does not answer). A request that
// got no complete answer (cut at the drain timeout or at shutdown, the
// client gone or its upload broken off, a response broken off midway) is
// class "cut". A request's duration runs from its head being read to the
// last byte of the response handed to the client's socket (the whole
// exchange, as users see it and as Prometheus' request durations go); for
// an upgrade (WebSocket), to the 101 head: the tunnel's life is no
// request's latency. Requests refused before they are routed (malformed,
// CONNECT) belong to no color and are not counted.

// Status classes, the values of the code label.
const (
	class1xx = iota
	class2xx
	class3xx
	class4xx
	class5xx
	classCut
	numClasses
)

func className(class int) string {
	return [numClasses]string{"1xx", "2xx", "3xx", "4xx", "5xx", "cut"}[class]
}

// classOf maps the status the client got to its class; 0 is no answer.
func classOf(status int) int {
	switch {
	case status == 0:
		return classCut
	case status >= 100 && status < 600:
		return status/100 - 1
	default:
		// Outside RFC 9110's range: the app answered wrongly.
		return class5xx
	}
}

// latencyBounds are the latency histogram's bucket upper bounds (the le of
// Prometheus); one more bucket takes what is slower. Read-only.
var latencyBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

const numBuckets = len(latencyBounds) + 1

// windowSeconds is the span oops status summarises.
const windowSeconds = 60

func bucketOf(d time.Duration) int {
	for i, b := range latencyBounds {
		if d <= b {
			return i
		}
	}
	return len(latencyBounds)
}

// BucketBounds are the latency histogram's upper bounds in seconds.
func BucketBounds() []float64 {
	out := make([]float64, len(latencyBounds))
	for i, b := range latencyBounds {
		out[i] = b.Seconds()
	}
	return out
}

// counts are requests by class and by latency bucket (not cumulative).
type counts struct {
	classes [numClasses]atomic.Uint64
	buckets [numBuckets]atomic.Uint64
}

func (c *counts) add(class, bucket int) {
	c.classes[class].Add(1)
	c.buckets[bucket].Add(1)
}

// slot is one second of the last minute.
type slot struct {
	sec atomic.Int64 // seconds since the epoch of its colorMetrics
	counts
}

// colorMetrics are one color's counters.
type colorMetrics struct {
	// epoch: slots are numbered in seconds of the monotonic clock since,
	// so a change of the wall clock cannot mix up the window.
	epoch    time.Time
	total    counts
	sumNanos atomic.Int64
	// mu is taken once per second and color, to clear the slot a new
	// second reuses.
	mu   sync.Mutex
	ring [windowSeconds]slot
}

func (m *colorMetrics) init(now time.Time) { m.epoch = now }

// observe counts one request that ended at end, with the status the client
// got (0: none). It allocates nothing.
func (m *colorMetrics) observe(status int, start, end time.Time) {
	d := end.Sub(start)
	class, bucket := classOf(status), bucketOf(d)
	m.total.add(class, bucket)
	m.sumNanos.Add(int64(d))
	sec := int64(end.Sub(m.epoch) / time.Second)
	s := &m.ring[sec%windowSeconds]
	if s.sec.Load() != sec {
		m.mu.Lock()
		if s.sec.Load() != sec {
			for i := range s.classes {
				s.classes[i].Store(0)
			}
			for i := range s.buckets {
				s.buckets[i].Store(0)
			}
			s.sec.Store(sec)
		}
		m.mu.Unlock()
	}
	s.add(class, bucket)
}

// RequestCounts are requests by status class ("1xx" to "5xx", and "cut":
// no complete answer) and the latency histogram of the same requests.
type RequestCounts struct {
	ByClass map[string]uint64 `json:"by_class"`
	// Buckets are cumulative, as Prometheus': Buckets[i] counts requests
	// that took at most BucketBounds[i]; the last one (+Inf) counts all.
	Buckets []uint64 `json:"buckets"`
}

// Count is the number of requests.
func (rc RequestCounts) Count() uint64 {
	if len(rc.Buckets) == 0 {
		return 0
	}
	return rc.Buckets[len(rc.Buckets)-1]
}

// Quantile estimates the q-quantile of the durations in seconds, by linear
// interpolation in its bucket as Prometheus' histogram_quantile does (the
// slowest bucket gives its lower bound); NaN without requests.
func (rc RequestCounts) Quantile(q float64) float64 {
	n := rc.Count()
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	for i, cum := range rc.Buckets {
		if float64(cum) < rank {
			continue
		}
		if i == len(latencyBounds) {
			return latencyBounds[i-1].Seconds()
		}
		lo, below := 0.0, uint64(0)
		if i > 0 {
			lo, below = latencyBounds[i-1].Seconds(), rc.Buckets[i-1]
		}
		hi := latencyBounds[i].Seconds()
		in := cum - below
		if in == 0 {
			return hi
		}
		return lo + (hi-lo)*(rank-float64(below))/float64(in)
	}
	return latencyBounds[len(latencyBounds)-1].Seconds()
}

// newRequestCounts has every class, so that JSON readers see zeros.
func newRequestCounts() RequestCounts {
	rc := RequestCounts{ByClass: make(map[string]uint64, numClasses), Buckets: make([]uint64, numBuckets)}
	for i := range numClasses {
		rc.ByClass[className(i)] = 0
	}
	return rc
}

// snapshot adds c into rc (the histogram not yet cumulative).
func (c *counts) snapshot(into *RequestCounts) {
	for i := range c.classes {
		into.ByClass[className(i)] += c.classes[i].Load()
	}
	for i := range c.buckets {
		into.Buckets[i] += c.buckets[i].Load()
	}
}

func cumulate(b []uint64) {
	for i := 1; i < len(b); i++ {
		b[i] += b[i-1]
	}
}

// totals are the counts since the proxy started and the sum of durations.
func (m *colorMetrics) totals() (RequestCounts, time.Duration) {
	rc := newRequestCounts()
	m.total.snapshot(&rc)
	cumulate(rc.Buckets)
	return rc, time.Duration(m.sumNanos.Load())
}

// lastMinute sums the slots of the last windowSeconds seconds, the current
// one included, and says how long a span they cover.
func (m *colorMetrics) lastMinute(now time.Time) (RequestCounts, time.Duration) {
	rc := newRequestCounts()
	el := now.Sub(m.epoch)
	sec := int64(el / time.Second)
	for i := range m.ring {
		s := &m.ring[i]
		if n := s.sec.Load(); n > sec-windowSeconds && n <= sec {
			s.snapshot(&rc)
		}
	}
	cumulate(rc.Buckets)
	span := min(el, (windowSeconds-1)*time.Second+el%time.Second)
	return rc, span
}

// summary is what oops status shows of a window.
func summary(rc RequestCounts, span time.Duration) *target.Traffic {
	n := rc.Count()
	tr := &target.Traffic{
		Seconds:      math.Round(span.Seconds()*10) / 10,
		Requests:     n,
		ServerErrors: rc.ByClass[className(class5xx)],
		Cut:          rc.ByClass[className(classCut)],
	}
	if span > 0 {
		tr.Rate = float64(n) / span.Seconds()
	}
	if n > 0 {
		tr.ServerErrorShare = float64(tr.ServerErrors) / float64(n)
		p99 := rc.Quantile(0.99)
		tr.P99Seconds = &p99
		tr.P99Over = float64(rc.Buckets[len(latencyBounds)-1]) < 0.99*float64(n)
	}
	return tr
}
