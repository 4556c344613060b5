package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

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
// oops against one moto, each script behind its own fault proxy.
func TestELBScripts(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	m := elbtest.Start(t)
	runFaultScripts(t, "testdata/elb", m.URL, 100000000000, elbScriptCmds(), nil)
}

// elbScriptCmds are the commands of the Classic ELB scripts:
//
//	elb-fixture NAME [live=COLOR] [policy] [instances=N] [hc=TARGET] [hc-interval=SECONDS] [notags] [backend=POLICY]
//	        an ELB with listeners 80 and 443 (certificate; policy: an SSL
//	        negotiation policy on 443; backend: a ProxyProtocol policy on the
//	        live port), tags blue=$BLUE_PORT green=$GREEN_PORT
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
//	        $INSTANCES: a simulation, moto reports running instances InService);
//	        a fault that never applies fails the script at its end
//	fault-wait ACTION   wait until a hung ACTION has arrived at the proxy
//	fault-clear         remove every fault
func elbScriptCmds() map[string]scriptCmd {
	return map[string]scriptCmd{
		"elb-fixture": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 1 {
				ts.Fatalf("usage: elb-fixture NAME [live=COLOR] [policy] [instances=N] [hc=TARGET] [hc-interval=SECONDS] [notags]")
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
				case "hc-interval":
					n, err := strconv.Atoi(v)
					ts.Check(err)
					f.CheckInterval = int32(n)
				case "notags":
					notags = true
				case "backend":
					f.BackendPolicies = append(f.BackendPolicies, v)
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
			ids, err := elbtest.Create(awsCtx(ts), awstest.Config(faultState(ts).moto), f)
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
			_, err := elbsdk.NewFromConfig(awstest.Config(faultState(ts).moto)).AddTags(awsCtx(ts), &elbsdk.AddTagsInput{LoadBalancerNames: []string{args[0]}, Tags: tags})
			ts.Check(err)
		},
		"elb-show": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: elb-show NAME")
			}
			s, err := elbtest.Read(awsCtx(ts), awstest.Config(faultState(ts).moto), args[0])
			ts.Check(err)
			for _, l := range s.Listeners {
				fmt.Fprintf(ts.Stdout(), "listener %s\n", l)
			}
			fmt.Fprintf(ts.Stdout(), "health %s\n", s.HealthCheck)
			for _, b := range s.Backends {
				fmt.Fprintf(ts.Stdout(), "backend %s\n", b)
			}
			for _, k := range sortedKeys(s.Tags) {
				fmt.Fprintf(ts.Stdout(), "tag %s=%s\n", k, s.Tags[k])
			}
		},
		// ELB calls only: oops also asks STS who runs it, for history.
		"elb-calls": callsCmd("GetCallerIdentity"),
		"fault": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 2 || len(args) > 3 {
				ts.Fatalf("usage: fault ACTION MODE [TIMES]")
			}
			r := faultproxy.Rule{Action: args[0]}
			if len(args) == 3 {
				n, err := strconv.Atoi(args[2])
				ts.Check(err)
				r.Times = n
			}
			addFault(ts, r, args[1], func(mode string, r *faultproxy.Rule) bool {
				switch mode {
				case "fail":
					r.Status, r.Body = http.StatusServiceUnavailable, faultproxy.QueryError("ServiceUnavailable", "injected by the test")
				case "out-of-service":
					r.Status, r.Body = http.StatusOK, elbtest.InstanceHealthXML("OutOfService", strings.Fields(ts.Getenv("INSTANCES"))...)
				default:
					return false
				}
				return true
			})
		},
		"fault-wait":  faultWait,
		"fault-clear": faultClear,
	}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
