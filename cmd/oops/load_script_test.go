package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// load is a loopback load generator running under a script: workers each
// send GET url in a loop, a short pause between requests so that two
// shared cores keep up.
type load struct {
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	sent, errors atomic.Int64
}

func startLoad(url string, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				res, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				l.sent.Add(1)
				if err != nil {
					l.errors.Add(1)
				} else {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode >= 500 {
						l.errors.Add(1)
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
	}
	return l
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// loadScriptCmds are the load generator's script commands:
//
//	load-start URL WORKERS   send GET URL from WORKERS loops until load-stop
//	                         (or the script ends)
//	load-stop                stop; "N requests, M failed" on stdout
func loadScriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	var loads sync.Map // *testscript.TestScript -> *load
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"load-start": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 2 {
				ts.Fatalf("usage: load-start URL WORKERS")
			}
			n, err := strconv.Atoi(args[1])
			ts.Check(err)
			l := startLoad(args[0], n)
			if _, dup := loads.LoadOrStore(ts, l); dup {
				l.stop()
				ts.Fatalf("load-start: a load runs already")
			}
			ts.Defer(func() {
				if l, ok := loads.LoadAndDelete(ts); ok {
					l.(*load).stop()
				}
			})
		},
		"load-stop": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 0 {
				ts.Fatalf("usage: load-stop")
			}
			v, ok := loads.LoadAndDelete(ts)
			if !ok {
				ts.Fatalf("load-stop: no load-start")
			}
			l := v.(*load)
			l.stop()
			fmt.Fprintf(ts.Stdout(), "%d requests, %d failed\n", l.sent.Load(), l.errors.Load())
		},
	}
}
