// Package bake benchmarks the bake's automatic revert on the local target:
// the time from the onset of errors on the new color to traffic back on
// the good one, over OOPS_BENCH_RUNS runs (default 20), with its
// distribution. Everything is in process and on 127.0.0.1: the oops proxy
// (target/local), two apps, a load generator, and target.Switch with the
// bake of package analysis (the pieces oops deploy runs, without the lock
// and history around them). Run it with
//
//	go test -run '^$' -bench BakeRevert -benchtime 1x ./bench/bake/
//
// OOPS_BENCH_INTERVAL sets analysis-interval (default 500ms); failure-limit
// is 1, so the bound the issue sets is 2 x analysis-interval + 100ms: the
// interval in which errors start may be diluted by good requests and pass,
// the next one has only errors' requests. The bad release answers 500 to
// 35% of requests (max-error-rate 5%, min-requests 10).
package bake

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/analysis"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/local"
)

// app is a color's app: always healthy, and once bad answering 500 to
// 35% of GET / (spread evenly), as the end-to-end test's flaky release.
type app struct {
	port int
	bad  atomic.Bool
	n    atomic.Int64
	srv  *http.Server
}

func startApp(b *testing.B) *app {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	a := &app{port: l.Addr().(*net.TCPAddr).Port}
	a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && a.bad.Load() && a.n.Add(1)*37%100 < 35 {
			http.Error(w, "bad release", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})}
	go func() { _ = a.srv.Serve(l) }()
	b.Cleanup(func() { _ = a.srv.Close() })
	return a
}

// timedTarget is the local target, noting when each Apply returned.
type timedTarget struct {
	*local.Target
	mu      sync.Mutex
	applied []time.Time
}

func (t *timedTarget) Apply(ctx context.Context, p *target.Plan) error {
	err := t.Target.Apply(ctx, p)
	t.mu.Lock()
	t.applied = append(t.applied, time.Now())
	t.mu.Unlock()
	return err
}

func BenchmarkBakeRevert(b *testing.B) {
	runs, interval := 20, 500*time.Millisecond
	if s := os.Getenv("OOPS_BENCH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("OOPS_BENCH_RUNS=%q is not a positive number", s)
		}
		runs = n
	}
	if s := os.Getenv("OOPS_BENCH_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			b.Fatalf("OOPS_BENCH_INTERVAL=%q is not a positive duration", s)
		}
		interval = d
	}
	dir := b.TempDir()
	blue, green := startApp(b), startApp(b)
	popts := local.ProxyOptions{StateDir: dir, BluePort: blue.port, GreenPort: green.port, HealthPath: "/", DrainTimeout: time.Second}
	px, err := local.NewProxy(popts)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- px.Serve(ctx, local.Listeners{Public: pub}) }()
	b.Cleanup(func() { cancel(); <-served })
	lt, err := local.New(local.Options{StateDir: dir, Listen: pub.Addr().String(), BluePort: blue.port, GreenPort: green.port, HealthPath: "/"})
	if err != nil {
		b.Fatal(err)
	}
	if err := waitProxy(ctx, lt); err != nil {
		b.Fatal(err)
	}
	// Load: four loops on the public address, as users would be.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for range 4 {
		go func() {
			for loadCtx.Err() == nil {
				req, _ := http.NewRequestWithContext(loadCtx, http.MethodGet, "http://"+pub.Addr().String()+"/", nil)
				if res, err := hc.Do(req); err == nil {
					res.Body.Close()
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	maxErr := 0.05
	minReqs := 10
	opts := analysis.Options{Bake: time.Hour, Interval: interval, FailureLimit: 1, MaxErrorRate: &maxErr, MinRequests: &minReqs}
	var took []time.Duration
	b.ResetTimer()
	for i := range runs {
		green.bad.Store(false)
		st, err := lt.State(ctx)
		if err != nil {
			b.Fatal(err)
		}
		from, to := st.Live.Color, st.Off.Color // the good color, and the one that goes bad
		bad := green
		if to == release.Blue {
			bad = blue
		}
		bad.bad.Store(false)
		tt := &timedTarget{Target: lt}
		var onset time.Time
		// Errors start at a random point of the bake's first two intervals.
		delay := interval/2 + time.Duration(rand.Int64N(int64(interval)))
		so := target.SwitchOptions{To: to, Bake: func(ctx context.Context, c release.Color) error {
			go func() {
				time.Sleep(delay)
				onset = time.Now()
				bad.bad.Store(true)
			}()
			_, err := analysis.Bake(ctx, []analysis.Check{analysis.ProxyCheck(ctx, lt, c, opts)}, c, opts)
			return err
		}}
		_, err = target.Switch(ctx, tt, so)
		if !isVerifyFailed(err) {
			b.Fatalf("run %d: %v, want a revert", i+1, err)
		}
		if len(tt.applied) != 2 || onset.IsZero() {
			b.Fatalf("run %d: %d switches, onset %v", i+1, len(tt.applied), onset)
		}
		if back, err := lt.State(ctx); err != nil || back.Live.Color != from {
			b.Fatalf("run %d: live %v (%v), want %s", i+1, back, err, from)
		}
		bad.bad.Store(false)
		took = append(took, tt.applied[1].Sub(onset))
	}
	b.StopTimer()
	slices.Sort(took)
	q := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	bound := 2*interval + 100*time.Millisecond
	over := 0
	for _, d := range took {
		if d > bound {
			over++
		}
	}
	b.Logf("onset of errors -> traffic back on the good color, %d runs, analysis-interval %s, failure-limit 1:", runs, interval)
	b.Logf("  min %s  p50 %s  p90 %s  max %s  mean %s", r(took[0]), r(q(0.5)), r(q(0.9)), r(took[len(took)-1]), r(mean(took)))
	b.Logf("  bound 2 x analysis-interval + 100ms = %s: %d of %d runs over it", bound, over, runs)
	b.Logf("  all: %v", rounded(took))
	b.ReportMetric(float64(q(0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
	b.ReportMetric(float64(over), "over-bound")
}

func mean(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}

func r(d time.Duration) string { return d.Round(time.Millisecond).String() }

func rounded(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = r(d)
	}
	return out
}

// waitProxy waits until the proxy answers on its admin socket.
func waitProxy(ctx context.Context, t *local.Target) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if up, err := t.ProxyRunning(ctx); err == nil && up {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the proxy did not start in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isVerifyFailed(err error) bool { return errors.Is(err, target.ErrVerifyFailed) }
