// Command hello is the example service of the oops quick start: a tiny web
// service that says which commit and color it is. oops starts it with PORT,
// OOPS_COLOR and OOPS_COMMIT set; the commit can also be baked in at build
// time with -ldflags "-X main.commit=<sha>".
//
//	GET /             hello from <commit> (<color>)
//	GET /healthcheck  ok (503 with HELLO_HEALTHY=false, or when built with
//	                  -X main.healthy=false: a release that never gets healthy;
//	                  after HELLO_HEALTH_DELAY, e.g. 1s: a slow health check)
//	GET /slow?d=2s    answers after d, for in-flight tests
//	GET /stream?n=5&every=100ms  n lines, one every interval, flushed as written
//
// For release analysis tests, a release that is healthy but bad: with
// HELLO_FAIL_PERCENT=35, GET / answers 500 to 35 of every 100 requests;
// with HELLO_DELAY=300ms, GET / answers after that long.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Set with -ldflags "-X main.commit=... -X main.healthy=false".
var (
	commit  = ""
	healthy = "true"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	c := commit
	if c == "" {
		c = os.Getenv("OOPS_COMMIT")
	}
	if c == "" {
		c = "unknown"
	}
	color := os.Getenv("OOPS_COLOR")
	srv := &http.Server{
		Addr:              "127.0.0.1:" + port,
		Handler:           degrade(handler(c, color, healthy != "false" && os.Getenv("HELLO_HEALTHY") != "false", healthDelay())),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// Finish what is in flight before exiting, as oops expects on SIGTERM.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("hello %s (%s) listening on %s", short(c), color, srv.Addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Printf("hello %s stopped", short(c))
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// degrade makes GET / fail HELLO_FAIL_PERCENT of the time (every
// request in order, so exactly that share) and wait HELLO_DELAY first.
func degrade(h http.Handler) http.Handler {
	pct, _ := strconv.Atoi(os.Getenv("HELLO_FAIL_PERCENT"))
	delay, _ := time.ParseDuration(os.Getenv("HELLO_DELAY"))
	if pct <= 0 && delay <= 0 {
		return h
	}
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			h.ServeHTTP(w, r)
			return
		}
		time.Sleep(delay)
		if int(n.Add(1)*37%100) < pct { // spread: 37 is prime to 100
			http.Error(w, "oops: a bad release", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// healthDelay is HELLO_HEALTH_DELAY (0 when unset or not a duration).
func healthDelay() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("HELLO_HEALTH_DELAY"))
	return d
}

func handler(commit, color string, ok bool, healthDelay time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s (%s)\n", short(commit), color)
	})
	mux.HandleFunc("GET /healthcheck", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(healthDelay):
		case <-r.Context().Done():
			return
		}
		if !ok {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "slow %s from %s (%s)\n", d, short(commit), color)
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		every, _ := time.ParseDuration(r.URL.Query().Get("every"))
		rc := http.NewResponseController(w)
		for i := range n {
			fmt.Fprintf(w, "%d %s (%s)\n", i, short(commit), color)
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-time.After(every):
			case <-r.Context().Done():
				return
			}
		}
	})
	return mux
}
