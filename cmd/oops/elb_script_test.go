package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// TestELBScripts runs the Classic ELB scripts in testdata/elb: the real
// oops (this test binary re-executed as oops) against one moto, each
// script behind its own fault proxy.
func TestELBScripts(t *testing.T) {
	m := elbtest.Start(t)
	cmds := scriptCmds()
	for name, fn := range elbScriptCmds() {
		cmds[name] = fn
	}
	var accounts atomic.Int64
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/elb",
		RequireExplicitExec: false,
		Setup: func(env *testscript.Env) error {
			if err := setupEnv(env); err != nil {
				return err
			}
			// Each script is its own AWS account in moto, so scripts can
			// use the same ELB names side by side.
			acct := accountProxy(m.URL, fmt.Sprintf("%012d", 100000000000+accounts.Add(1)))
			env.Defer(acct.Close)
			p := faultproxy.New(acct.URL)
			env.Defer(p.Close)
			env.Values[elbKey{}] = &elbScript{proxy: p, moto: acct.URL, hits: map[string]chan string{}}
			for _, kv := range awstest.Env(p.URL) {
				k, v, _ := strings.Cut(kv, "=")
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds:      cmds,
		Condition: awsCondition,
	})
}

type elbKey struct{}

// accountProxy forwards to moto as AWS account acct (moto keeps separate
// resources per account, chosen by this header).
func accountProxy(motoURL, acct string) *httptest.Server {
	u, _ := url.Parse(motoURL)
	rp := httputil.NewSingleHostReverseProxy(u)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("x-moto-account-id", acct)
		rp.ServeHTTP(w, r)
	}))
}

// elbScript is one script's fault proxy and the hang rules it waits on.
type elbScript struct {
	proxy *faultproxy.Proxy
	moto  string // moto, in this script's account, bypassing the fault proxy
	mu    sync.Mutex
	hits  map[string]chan string
}

// elbScriptCmds are the commands of the Classic ELB scripts:
//
//	elb-fixture NAME [live=COLOR] [policy] [instances=N] [hc=TARGET] [notags]
//	        an ELB with listeners 80 and 443 (certificate; policy: an SSL
//	        negotiation policy on 443), tags blue=$BLUE_PORT green=$GREEN_PORT
//	        (free loopback ports, chosen once per script), health check
//	        HTTP:<live port>/healthcheck; instances=N sets $INSTANCES
//	elb-tag NAME K=V... set tags on the ELB
//	elb-show NAME       print listeners, health check and tags, one per line
//	elb-calls           print the ELB calls made through the proxy (STS left
//	                    out), then forget them
//	fault ACTION MODE [TIMES]
//	        MODE is fail (503), denied (403 AccessDenied), throttle,
//	        cut-after (applied, answer lost), hang (never forwarded), or
//	        out-of-service (DescribeInstanceHealth answers OutOfService for
//	        $INSTANCES: a simulation, moto reports running instances InService)
//	fault-wait ACTION   wait until a hung ACTION has arrived at the proxy
//	fault-clear         remove every fault
func elbScriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	state := func(ts *testscript.TestScript) *elbScript { return ts.Value(elbKey{}).(*elbScript) }
	ctx := func(ts *testscript.TestScript) context.Context {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		ts.Defer(cancel)
		return c
	}
	noNeg := func(ts *testscript.TestScript, neg bool) {
		if neg {
			ts.Fatalf("unsupported: !")
		}
	}
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"elb-fixture": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 1 {
				ts.Fatalf("usage: elb-fixture NAME [live=COLOR] [policy] [instances=N] [hc=TARGET] [notags]")
			}
			for _, k := range []string{"BLUE_PORT", "GREEN_PORT"} {
				if ts.Getenv(k) == "" {
					ts.Setenv(k, strconv.Itoa(freePort(ts)))
				}
			}
			f := elbtest.Fixture{Name: args[0], Blue: ts.Getenv("BLUE_PORT"), Green: ts.Getenv("GREEN_PORT"), Live: release.Blue}
			var policies []string
			notags := false
			for _, a := range args[1:] {
				k, v, _ := strings.Cut(a, "=")
				switch k {
				case "live":
					f.Live = release.Color(v)
				case "policy":
					policies = []string{elbtest.SSLPolicy}
				case "instances":
					n, err := strconv.Atoi(v)
					ts.Check(err)
					f.Instances = n
				case "hc":
					f.HealthCheck = v
				case "notags":
					notags = true
				default:
					ts.Fatalf("elb-fixture: unknown option %q", a)
				}
			}
			f.Listeners = elbtest.Default80443(elbtest.FakeCert, policies...)
			live := f.Blue
			if f.Live == release.Green {
				live = f.Green
			}
			if notags {
				f.Blue, f.Green = "", ""
				p, _ := strconv.Atoi(live)
				for i := range f.Listeners {
					f.Listeners[i].InstancePort = int32(p)
				}
				if f.HealthCheck == "" {
					f.HealthCheck = "HTTP:" + live + "/healthcheck"
				}
			}
			ids, err := elbtest.Create(ctx(ts), awstest.Config(state(ts).moto), f)
			ts.Check(err)
			if len(ids) > 0 {
				ts.Setenv("INSTANCES", strings.Join(ids, " "))
			}
		},
		"elb-tag": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 2 {
				ts.Fatalf("usage: elb-tag NAME K=V...")
			}
			var tags []types.Tag
			for _, kv := range args[1:] {
				k, v, _ := strings.Cut(kv, "=")
				tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
			}
			_, err := elbsdk.NewFromConfig(awstest.Config(state(ts).moto)).AddTags(ctx(ts), &elbsdk.AddTagsInput{LoadBalancerNames: []string{args[0]}, Tags: tags})
			ts.Check(err)
		},
		"elb-show": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: elb-show NAME")
			}
			s, err := elbtest.Read(ctx(ts), awstest.Config(state(ts).moto), args[0])
			ts.Check(err)
			for _, l := range s.Listeners {
				fmt.Fprintf(ts.Stdout(), "listener %s\n", l)
			}
			fmt.Fprintf(ts.Stdout(), "health %s\n", s.HealthCheck)
			for _, k := range sortedKeys(s.Tags) {
				fmt.Fprintf(ts.Stdout(), "tag %s=%s\n", k, s.Tags[k])
			}
		},
		"elb-calls": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			p := state(ts).proxy
			// ELB calls only: oops also asks STS who runs it, for history.
			calls := slices.DeleteFunc(p.Calls(), func(a string) bool { return a == "GetCallerIdentity" })
			fmt.Fprintf(ts.Stdout(), "%d calls\n", len(calls))
			for _, c := range calls {
				fmt.Fprintln(ts.Stdout(), c)
			}
			p.Clear()
		},
		"fault": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 2 || len(args) > 3 {
				ts.Fatalf("usage: fault ACTION MODE [TIMES]")
			}
			s := state(ts)
			r := faultproxy.Rule{Action: args[0]}
			if len(args) == 3 {
				n, err := strconv.Atoi(args[2])
				ts.Check(err)
				r.Times = n
			}
			switch args[1] {
			case "fail":
				r.Status, r.Body = http.StatusServiceUnavailable, faultproxy.QueryError("ServiceUnavailable", "injected by the test")
			case "denied":
				r.Status, r.Body = http.StatusForbidden, faultproxy.QueryError("AccessDenied", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticloadbalancing:"+args[0])
			case "throttle":
				r.Status, r.Body = http.StatusBadRequest, faultproxy.QueryError("Throttling", "Rate exceeded")
			case "cut-after":
				r.Cut, r.After = true, true
			case "hang":
				hit := make(chan string, 8)
				s.mu.Lock()
				s.hits[args[0]] = hit
				s.mu.Unlock()
				r.Delay, r.Hit = time.Hour, hit
			case "out-of-service":
				r.Status, r.Body = http.StatusOK, elbtest.InstanceHealthXML("OutOfService", strings.Fields(ts.Getenv("INSTANCES"))...)
			default:
				ts.Fatalf("fault: unknown mode %q", args[1])
			}
			s.proxy.Add(r)
		},
		"fault-wait": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: fault-wait ACTION")
			}
			s := state(ts)
			s.mu.Lock()
			hit := s.hits[args[0]]
			s.mu.Unlock()
			if hit == nil {
				ts.Fatalf("no hang rule for %s", args[0])
			}
			select {
			case <-hit:
			case <-time.After(30 * time.Second):
				ts.Fatalf("%s did not arrive within 30s", args[0])
			}
		},
		"fault-clear": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			state(ts).proxy.Clear()
		},
	}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
