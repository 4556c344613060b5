package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/oops-deploy/oops/release"
)

// statusApp answers 500 on /fail, 200 elsewhere.
func statusApp(color string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, color+" failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, color)
	})
}

// send makes n GETs of path and checks each one's status.
func send(t *testing.T, base, path string, n, want int) {
	t.Helper()
	for range n {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("GET %s: %s, want %d", path, res.Status, want)
		}
	}
}

// byClass is a color's expected counts, the other classes 0.
type byClass map[string]uint64

func (want byClass) full() map[string]uint64 {
	out := map[string]uint64{"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "cut": 0}
	maps.Copy(out, want)
	return out
}

func (want byClass) total() uint64 {
	n := uint64(0)
	for _, v := range want {
		n += v
	}
	return n
}

// waitCounts waits until the admin socket reports want per color. A
// request is counted when its exchange ends, a moment after the client
// read its response: hence the wait.
func waitCounts(t *testing.T, dir string, want map[release.Color]byClass) *ProxyMetrics {
	t.Helper()
	c := newAdminClient(dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.metrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for color, w := range want {
			cm := m.Colors[color]
			ok = ok && maps.Equal(cm.Total.ByClass, w.full()) && maps.Equal(cm.LastMinute.ByClass, w.full())
		}
		if ok {
			return m
		}
		if time.Now().After(deadline) {
			for color, w := range want {
				t.Errorf("%s: total %v, last minute %v; want %v", color, m.Colors[color].Total.ByClass, m.Colors[color].LastMinute.ByClass, w.full())
			}
			t.FailNow()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProxyCountsRequestsPerColorAndClass(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: colorServer(t, "blue", statusApp("blue")), GreenPort: colorServer(t, "green", statusApp("green"))})
	send(t, rp.url, "/", 7, 200)
	send(t, rp.url, "/fail", 3, 500)
	if _, err := rp.p.Switch(release.Green, ""); err != nil {
		t.Fatal(err)
	}
	send(t, rp.url, "/", 4, 200)
	send(t, rp.url, "/fail", 2, 500)
	send(t, rp.prev, "/", 1, 200) // the preview listener goes to blue now
	want := map[release.Color]byClass{release.Blue: {"2xx": 8, "5xx": 3}, release.Green: {"2xx": 4, "5xx": 2}}

	// The admin socket: totals, histograms and the last minute agree.
	m := waitCounts(t, dir, want)
	if len(m.BucketBounds)+1 != len(m.Colors[release.Blue].Total.Buckets) {
		t.Errorf("%d bucket bounds for %d buckets", len(m.BucketBounds), len(m.Colors[release.Blue].Total.Buckets))
	}
	for color, w := range want {
		cm := m.Colors[color]
		if cm.Total.Count() != w.total() || cm.LastMinute.Count() != w.total() || cm.DurationSumSeconds <= 0 {
			t.Errorf("%s: histogram counts %d total, %d last minute (sum %gs); want %d", color, cm.Total.Count(), cm.LastMinute.Count(), cm.DurationSumSeconds, w.total())
		}
		s := cm.Summary
		if s.Requests != w.total() || s.ServerErrors != w["5xx"] || s.P99Seconds == nil || s.Rate <= 0 {
			t.Errorf("%s: last minute summary %+v", color, s)
		}
	}

	// oops status reads the same through the proxy's status.
	ps, err := newAdminClient(dir).status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for color, w := range want {
		tr := ps.Colors[color].Traffic
		if tr == nil || tr.Requests != w.total() || tr.ServerErrors != w["5xx"] ||
			math.Abs(tr.ServerErrorShare-float64(w["5xx"])/float64(w.total())) > 1e-9 || tr.P99Seconds == nil {
			t.Errorf("%s: status traffic %+v, want %d requests, %d 5xx", color, tr, w.total(), w["5xx"])
		}
	}

	// Prometheus: the text format, parsed as a scraper does.
	fams := scrape(t, rp.metrics)
	for color, w := range want {
		for class, n := range w.full() {
			if got := sample(t, fams, "oops_requests_total", map[string]string{"color": string(color), "code": class}); got != float64(n) {
				t.Errorf(`oops_requests_total{color=%q,code=%q} = %g, want %d`, color, class, got, n)
			}
		}
		h := histogram(t, fams, "oops_request_duration_seconds", string(color))
		if h.GetSampleCount() != w.total() || h.GetSampleSum() <= 0 || len(h.GetBucket()) != numBuckets {
			t.Errorf("%s: histogram count %d sum %g, %d buckets", color, h.GetSampleCount(), h.GetSampleSum(), len(h.GetBucket()))
		}
	}
}

func TestProxyCountsA502OfADeadColorAs5xx(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: freePort(t), GreenPort: colorServer(t, "green", nil)})
	send(t, rp.url, "/", 3, http.StatusBadGateway)
	waitCounts(t, dir, map[release.Color]byClass{release.Blue: {"5xx": 3}, release.Green: {}})
	fams := scrape(t, rp.metrics)
	if got := sample(t, fams, "oops_requests_total", map[string]string{"color": "blue", "code": "5xx"}); got != 3 {
		t.Errorf(`oops_requests_total{color="blue",code="5xx"} = %g, want 3`, got)
	}
}

func TestProxyCountsAnUpgradeWhenItsTunnelOpens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: colorServer(t, "blue", upgradeEcho("blue")), GreenPort: freePort(t)})
	conn, err := net.Dial("tcp", strings.TrimPrefix(rp.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through proxy: %v, %v", res, err)
	}
	// Counted while the tunnel is still open: its life is no latency.
	waitCounts(t, dir, map[release.Color]byClass{release.Blue: {"1xx": 1}})
}

func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample is the value of the counter or gauge name with exactly labels.
func sample(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	for _, m := range family(t, fams, name).GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if maps.Equal(got, labels) {
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("%s has no sample %v", name, labels)
	return 0
}

func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name, color string) *dto.Histogram {
	t.Helper()
	for _, m := range family(t, fams, name).GetMetric() {
		if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == color {
			return m.GetHistogram()
		}
	}
	t.Fatalf("%s has no histogram for %s", name, color)
	return nil
}

func family(t *testing.T, fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s; have %s", name, strings.Join(slices.Sorted(maps.Keys(fams)), ", "))
	}
	return f
}

func TestLastMinuteWindow(t *testing.T) {
	t0 := time.Now()
	var m colorMetrics
	m.init(t0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for range 100 {
		m.observe(200, at(time.Second), at(time.Second+800*time.Microsecond))
	}
	m.observe(503, at(2*time.Second), at(5*time.Second)) // 3s
	m.observe(0, at(2*time.Second), at(2*time.Second))   // cut
	tests := []struct {
		now          time.Duration
		count, e5xx  uint64
		span         time.Duration
		p99Min, p99M float64 // bounds of the p99 estimate, seconds
	}{
		{now: 30 * time.Second, count: 102, e5xx: 1, span: 30 * time.Second, p99Min: 0.0005, p99M: 0.001},
		{now: 60500 * time.Millisecond, count: 102, e5xx: 1, span: 59500 * time.Millisecond, p99Min: 0.0005, p99M: 0.001},
		// Second 1 has left the window; seconds 2 and 5 are in it.
		{now: 61500 * time.Millisecond, count: 2, e5xx: 1, span: 59500 * time.Millisecond, p99Min: 2.5, p99M: 5},
		{now: 66 * time.Second, count: 0, span: 59 * time.Second},
	}
	for _, tt := range tests {
		rc, span := m.lastMinute(at(tt.now))
		if rc.Count() != tt.count || rc.ByClass["5xx"] != tt.e5xx || span != tt.span {
			t.Errorf("at %s: %d requests, %d 5xx over %s; want %d, %d over %s", tt.now, rc.Count(), rc.ByClass["5xx"], span, tt.count, tt.e5xx, tt.span)
		}
		if q := rc.Quantile(0.99); tt.count > 0 && (q <= tt.p99Min || q > tt.p99M) {
			t.Errorf("at %s: p99 %gs, want in (%g, %g]", tt.now, q, tt.p99Min, tt.p99M)
		}
	}
	// A second 60 seconds later reuses the slot: the old counts go.
	m.observe(200, at(61*time.Second), at(61*time.Second))
	if rc, _ := m.lastMinute(at(61500 * time.Millisecond)); rc.Count() != 3 || rc.ByClass["2xx"] != 1 {
		t.Errorf("after the slot of second 1 was reused: %v", rc.ByClass)
	}
	if rc, sum := m.totals(); rc.Count() != 103 || rc.ByClass["2xx"] != 101 || rc.ByClass["cut"] != 1 || sum < 3*time.Second {
		t.Errorf("totals %v (sum %s)", rc.ByClass, sum)
	}
}

func TestClassOf(t *testing.T) {
	for status, want := range map[int]string{0: "cut", 101: "1xx", 200: "2xx", 304: "3xx", 404: "4xx", 499: "4xx", 502: "5xx", 599: "5xx", 600: "5xx", 999: "5xx"} {
		if got := className(classOf(status)); got != want {
			t.Errorf("status %d: class %s, want %s", status, got, want)
		}
	}
}

// BenchmarkObserve is the cost the data path pays per request for its
// metrics, from both cores at once.
func BenchmarkObserve(b *testing.B) {
	var m colorMetrics
	m.init(time.Now())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			m.observe(200, start, time.Now())
		}
	})
}

// A p99 past the slowest bucket is only known to be over its bound.
func TestSummaryP99PastTheSlowestBucket(t *testing.T) {
	t0 := time.Now()
	for _, tt := range []struct {
		name string
		d    time.Duration
		over bool
	}{{"slow", 3 * time.Second, false}, {"slower than every bucket", time.Minute, true}} {
		var m colorMetrics
		m.init(t0)
		for range 10 {
			m.observe(200, t0, t0.Add(tt.d))
		}
		tr := summary(m.lastMinute(t0.Add(tt.d)))
		if tr.P99Seconds == nil || tr.P99Over != tt.over {
			t.Errorf("%s: p99 %v, over %v; want over %v", tt.name, tr.P99Seconds, tr.P99Over, tt.over)
		}
	}
}

// A bake starts when Verify returns and judges the requests counted after
// it: Verify's own probe through the proxy must be counted by then, or a
// color nobody uses shows one request in its first measurement. The proxy
// counts a request after its answer went out; here that takes 300ms.
func TestVerifyReturnsOnceItsProbeIsCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	po := e.tgt.ProxyOptions()
	po.CheckInterval = 50 * time.Millisecond
	po.beforeCount = func(target []byte) {
		if string(target) == "/healthcheck" {
			time.Sleep(300 * time.Millisecond)
		}
	}
	startProxy(t, po)
	c, _, err := e.deploy(e.release(hello(t, "good"), false), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e.switchTo(c)
	ctx := context.Background()
	time.Sleep(400 * time.Millisecond) // the switch's own verify is counted
	before, err := e.tgt.Counts(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tgt.Verify(ctx, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	after, err := e.tgt.Counts(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Requests - before.Requests; got != 1 {
		t.Errorf("right after Verify the proxy counted %d new requests on %s; want its probe, 1", got, c)
	}
}
