// Command loadgen is the load generator of the proxy benchmarks: it GETs a
// URL from C concurrent keep-alive connections until the duration ends or
// it is interrupted, then prints one JSON line: requests, failures by
// kind, requests per second and latency percentiles. Loopback only: the
// benchmarks point it at 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Result is what loadgen prints.
type Result struct {
	// Requests counts attempts, failed or not.
	Requests int64            `json:"requests"`
	Failures map[string]int64 `json:"failures"`
	Seconds  float64          `json:"seconds"`
	RPS      float64          `json:"rps"`
	P50MS    float64          `json:"p50_ms"`
	P99MS    float64          `json:"p99_ms"`
	MaxMS    float64          `json:"max_ms"`
	// Bodies counts responses by their first line, to see which color
	// answered how often.
	Bodies map[string]int64 `json:"bodies"`
}

func main() {
	url := flag.String("url", "", "URL to GET (loopback)")
	conns := flag.Int("c", 32, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "how long to run (until interrupted, at most)")
	expect := flag.String("expect", "", "every 200 body must start with this")
	flag.Parse()
	if !strings.HasPrefix(*url, "http://127.0.0.1:") && !strings.HasPrefix(*url, "http://[::1]:") {
		fmt.Fprintln(os.Stderr, "loadgen: -url must be http://127.0.0.1:PORT/... (loopback only)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	res := run(ctx, *url, *conns, []byte(*expect))
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

type worker struct {
	attempts int64
	lat      []time.Duration
	failures map[string]int64
	bodies   map[string]int64
}

func run(ctx context.Context, url string, conns int, expect []byte) Result {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ws := make([]*worker, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ws {
		w := &worker{lat: make([]time.Duration, 0, 1<<16), failures: map[string]int64{}, bodies: map[string]int64{}}
		ws[i] = w
		wg.Go(func() {
			buf := make([]byte, 0, 4096)
			for ctx.Err() == nil {
				w.attempts++
				t0 := time.Now()
				// Requests are not tied to ctx: the run ends between
				// requests, never by cancelling one.
				res, err := client.Get(url)
				if err != nil {
					w.failures[classify(err)]++
					continue
				}
				body := bytes.NewBuffer(buf[:0])
				_, err = io.Copy(body, res.Body)
				res.Body.Close()
				w.lat = append(w.lat, time.Since(t0))
				switch {
				case err != nil:
					w.failures["body: "+classify(err)]++
				case res.StatusCode != http.StatusOK:
					w.failures[fmt.Sprintf("status %d", res.StatusCode)]++
				case !bytes.HasPrefix(body.Bytes(), expect):
					w.failures["unexpected body"]++
				default:
					line, _, _ := bytes.Cut(body.Bytes(), []byte("\n"))
					w.bodies[string(line)]++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := Result{Failures: map[string]int64{}, Bodies: map[string]int64{}, Seconds: elapsed.Seconds()}
	var all []time.Duration
	for _, w := range ws {
		all = append(all, w.lat...)
		for k, v := range w.failures {
			r.Failures[k] += v
		}
		for k, v := range w.bodies {
			r.Bodies[k] += v
		}
	}
	for _, w := range ws {
		r.Requests += w.attempts
	}
	r.RPS = float64(len(all)) / elapsed.Seconds()
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	r.P50MS, r.P99MS = pct(0.50), pct(0.99)
	if len(all) > 0 {
		r.MaxMS = float64(all[len(all)-1].Microseconds()) / 1000
	}
	return r
}

// classify names a transport failure: a reset, a refused connection, an
// early EOF, a timeout.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}
