package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/dnstest"
	"github.com/oops-deploy/oops/release"
)

// TestDNSScripts runs the Route 53 scripts in testdata/dns: the real oops
// against one moto, each script in its own AWS account behind its own
// fault proxy. The records point at 127.0.0.1, where dns-serve answers
// the health probes.
func TestDNSScripts(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	m := awstest.Start(t)
	cmds := dnsFixtureCmds(func(ts *testscript.TestScript) string { return faultState(ts).moto })
	cmds["dns-calls"] = callsCmd("GetCallerIdentity")
	cmds["dns-fault"] = albScriptCmds()["alb-fault"]
	cmds["dns-oopsrc"] = albScriptCmds()["alb-oopsrc"]
	runFaultScripts(t, "testdata/dns", m.URL, 300000000000, cmds, nil)
}

// dnsFixtureCmds are the commands of the Route 53 scripts that build and
// read the hosted zone on the moto at url(ts) (so that the scripts of
// testdata/script, after aws-start, have them too):
//
//	dns-fixture ZONE [weights=B/G] [ttl=N]
//	        a hosted zone ZONE with weighted A records api.ZONE, blue and
//	        green, both 127.0.0.1
//	dns-show            print the weights and oops's TXT record
//	dns-weight COLOR N  set COLOR's weight by hand
//	dns-serve [STATUS]  answer health probes on 127.0.0.1 with STATUS
//	        (default 200), on the port in $HEALTH_PORT
//
// TestDNSScripts adds:
//
//	dns-calls           print the API calls made through the proxy, then forget them
//	dns-fault ACTION MODE [times=N]  (fail, throttle, denied, cut-after, hang)
//	dns-oopsrc KEY=VALUE...  write .oopsrc
func dnsFixtureCmds(url func(ts *testscript.TestScript) string) map[string]scriptCmd {
	var mu sync.Mutex
	zones := map[*testscript.TestScript]*dnstest.Zone{}
	zone := func(ts *testscript.TestScript) *dnstest.Zone {
		mu.Lock()
		defer mu.Unlock()
		z := zones[ts]
		if z == nil {
			ts.Fatalf("no zone: run dns-fixture first")
		}
		return z
	}
	return map[string]scriptCmd{
		"dns-fixture": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 1 {
				ts.Fatalf("usage: dns-fixture ZONE [weights=B/G] [ttl=N]")
			}
			o := dnstest.Options{Zone: args[0], Values: map[release.Color]string{release.Blue: "127.0.0.1", release.Green: "127.0.0.1"}}
			for _, a := range args[1:] {
				k, v, _ := strings.Cut(a, "=")
				switch k {
				case "weights":
					b, g, _ := strings.Cut(v, "/")
					bw, err := strconv.Atoi(b)
					ts.Check(err)
					gw, err := strconv.Atoi(g)
					ts.Check(err)
					o.Weights = &[2]int{bw, gw}
				case "ttl":
					n, err := strconv.Atoi(v)
					ts.Check(err)
					o.TTL = int64(n)
				default:
					ts.Fatalf("dns-fixture: unknown option %q", a)
				}
			}
			z, err := dnstest.New(awsCtx(ts), awstest.Config(url(ts)), o)
			ts.Check(err)
			mu.Lock()
			zones[ts] = z
			mu.Unlock()
			ts.Defer(func() {
				mu.Lock()
				delete(zones, ts)
				mu.Unlock()
			})
			ts.Setenv("ZONE_ID", z.ID)
		},
		"dns-show": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			z := zone(ts)
			w, err := z.Weights(awsCtx(ts))
			ts.Check(err)
			fmt.Fprintf(ts.Stdout(), "weights %s\n", w)
			m, err := z.Meta(awsCtx(ts))
			ts.Check(err)
			if m != "" {
				fmt.Fprintf(ts.Stdout(), "txt %s\n", m)
			}
		},
		"dns-weight": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: dns-weight COLOR N")
			}
			n, err := strconv.Atoi(args[1])
			ts.Check(err)
			ts.Check(zone(ts).SetWeight(awsCtx(ts), release.Color(args[0]), int64(n)))
		},
		"dns-serve": dnsServe(),
	}
}

// dnsServe is the command dns-serve [STATUS]: the first call listens on a
// free port of 127.0.0.1 and sets $HEALTH_PORT; later ones change the answer.
func dnsServe() scriptCmd {
	var mu sync.Mutex
	servers := map[*testscript.TestScript]*atomic.Int32{}
	return func(ts *testscript.TestScript, neg bool, args []string) {
		noNeg(ts, neg)
		status := http.StatusOK
		if len(args) == 1 {
			var err error
			status, err = strconv.Atoi(args[0])
			ts.Check(err)
		}
		mu.Lock()
		st := servers[ts]
		mu.Unlock()
		if st != nil {
			st.Store(int32(status))
			return
		}
		st = new(atomic.Int32)
		st.Store(int32(status))
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(int(st.Load()))
		})}
		go srv.Serve(l)
		mu.Lock()
		servers[ts] = st
		mu.Unlock()
		ts.Setenv("HEALTH_PORT", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
		ts.Defer(func() {
			srv.Close()
			mu.Lock()
			delete(servers, ts)
			mu.Unlock()
		})
	}
}
