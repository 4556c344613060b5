package local

import (
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oops-deploy/oops/release"
)

// collector hands the proxy's counters to Prometheus at scrape time, so
// the data path never touches the Prometheus library.
type collector struct {
	p                            *Proxy
	requests, duration, inflight *prometheus.Desc
}

func newCollector(p *Proxy) *collector {
	return &collector{
		p: p,
		requests: prometheus.NewDesc("oops_requests_total",
			`Requests the oops proxy forwarded to a color, by the class of the status the client got ("cut": no complete answer).`,
			[]string{"color", "code"}, nil),
		duration: prometheus.NewDesc("oops_request_duration_seconds",
			"Time from a request's head read to the last byte of its response (to the 101 head for an upgrade).",
			[]string{"color"}, nil),
		inflight: prometheus.NewDesc("oops_requests_in_flight",
			"Requests on a color now, draining ones included.",
			[]string{"color"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.duration
	ch <- c.inflight
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, color := range []release.Color{release.Blue, release.Green} {
		b := c.p.backends[color]
		rc, sum := b.metrics.totals()
		created := b.metrics.epoch
		for i := range numClasses {
			ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(c.requests, prometheus.CounterValue,
				float64(rc.ByClass[className(i)]), created, string(color), className(i))
		}
		buckets := make(map[float64]uint64, len(latencyBounds))
		for i, bound := range latencyBounds {
			buckets[bound.Seconds()] = rc.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(c.duration, rc.Count(), sum.Seconds(), buckets, created, string(color))
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(c.p.InFlight(color)), string(color))
	}
}

// metricsHandler serves the Prometheus text format at /metrics, from a
// registry of its own (the library's default one is global state).
func (p *Proxy) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(p))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: log.New(logfWriter(p.opts.Logf), "metrics: ", 0),
	}))
	return mux
}

// metricsMaxConns caps the connections of metrics-listen: a scraper needs
// one or two, and they come out of fdReserve, the descriptors kept for the
// admin socket and health checks, which a flood must not reach.
const metricsMaxConns = 16

// metricsServer serves metricsHandler on l, capped and timed out, so that
// connections to it can neither pile up nor stay open for ever.
func (p *Proxy) metricsServer() *http.Server {
	return &http.Server{Handler: p.metricsHandler(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: log.New(logfWriter(p.opts.Logf), "", 0)}
}

// capListener closes the connections it accepts past max at once.
type capListener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &capConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		c.Close()
	}
}

type capConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
