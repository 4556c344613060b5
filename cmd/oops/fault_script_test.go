package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/internal/faultproxy"
)

// scriptCmd is a testscript command.
type scriptCmd = func(ts *testscript.TestScript, neg bool, args []string)

// faultScript is one script's AWS account in a shared moto, the fault
// proxy oops talks to, and the hang rules the script waits on.
type faultScript struct {
	proxy *faultproxy.Proxy
	moto  string // this script's account, bypassing the fault proxy
	// rec records oops's calls for the IAM check at the script's end.
	rec  *callRecorder
	mu   sync.Mutex
	hits map[string]chan string
}

type faultKey struct{}

// runFaultScripts runs the scripts in dir: the real oops (this test binary
// re-executed as oops) against the moto at motoURL, each script in its own
// AWS account (numbered from firstAccount, so scripts can use the same
// names side by side) behind its own fault proxy and an IAM call recorder
// (see recordScript). setup, if not nil, adds a backend's own per-script
// state.
func runFaultScripts(t *testing.T, dir, motoURL string, firstAccount int64, cmds map[string]scriptCmd, setup func(env *testscript.Env)) {
	all := scriptCmds()
	for name, fn := range cmds {
		all[name] = fn
	}
	var accounts atomic.Int64
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: false,
		Setup: func(env *testscript.Env) error {
			if err := setupEnv(env); err != nil {
				return err
			}
			acct := accountProxy(motoURL, fmt.Sprintf("%012d", firstAccount+accounts.Add(1)))
			env.Defer(acct.Close)
			p := faultproxy.New(acct.URL)
			env.Defer(func() { verifyAtEnd(env.T(), p) })
			env.Defer(p.Close)
			// oops talks to the recorder, in front of the fault proxy (which
			// answers some calls itself): the script ends by checking its
			// calls against oops iam-policy.
			rec := recordScript(env, env.T(), env.WorkDir, p.URL)
			env.Values[faultKey{}] = &faultScript{proxy: p, moto: acct.URL, rec: rec, hits: map[string]chan string{}}
			if setup != nil {
				setup(env)
			}
			return nil
		},
		Cmds:      all,
		Condition: awsCondition,
	})
}

// verifyAtEnd fails the script t runs for each rule of p that never
// applied: a fault a script injects but oops never meets tests nothing.
// It runs in a Defer, where ts.Fatalf cannot stop the script (it panics
// outside a command), hence t.
func verifyAtEnd(t testscript.T, p *faultproxy.Proxy) {
	if u := p.Unused(); len(u) > 0 {
		t.Fatal("fault rules never applied:\n\t" + strings.Join(u, "\n\t"))
	}
}

func faultState(ts *testscript.TestScript) *faultScript {
	return ts.Value(faultKey{}).(*faultScript)
}

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

// addFault injects the fault MODE into the script's next ACTION calls
// (r.Action). own answers the backend's own modes, returning false for a
// mode it does not know; the modes every backend shares are
// throttle, denied (403 AccessDenied), cut-after (applied, answer lost)
// and hang (never forwarded; see faultWait).
func addFault(ts *testscript.TestScript, r faultproxy.Rule, mode string, own func(mode string, r *faultproxy.Rule) bool) {
	s := faultState(ts)
	switch {
	case own(mode, &r):
	case mode == "throttle":
		r.Status, r.Body = http.StatusBadRequest, faultproxy.QueryError("Throttling", "Rate exceeded")
	case mode == "denied":
		r.Status, r.Body = http.StatusForbidden, faultproxy.QueryError("AccessDenied", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: elasticloadbalancing:"+r.Action)
	case mode == "cut-after":
		r.Cut, r.After = true, true
	case mode == "hang":
		hit := make(chan string, 8)
		s.mu.Lock()
		s.hits[r.Action] = hit
		s.mu.Unlock()
		r.Delay, r.Hit = time.Hour, hit
	default:
		ts.Fatalf("unknown fault mode %q", mode)
	}
	s.proxy.Add(r)
}

// faultWait is the command (fault-wait, alb-fault-wait) "ACTION": wait
// until a hung ACTION has arrived at the proxy.
func faultWait(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg)
	if len(args) != 1 {
		ts.Fatalf("usage: fault-wait ACTION")
	}
	s := faultState(ts)
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
}

// faultClear is the command (fault-clear, alb-fault-clear) that removes
// every fault.
func faultClear(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg)
	faultState(ts).proxy.Clear()
}

// callsCmd is a command printing the API calls made through the proxy,
// leaving out the actions in skip, then forgetting them.
func callsCmd(skip ...string) scriptCmd {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		noNeg(ts, neg)
		p := faultState(ts).proxy
		all := p.Calls()
		calls := slices.DeleteFunc(slices.Clone(all), func(a string) bool { return slices.Contains(skip, a) })
		fmt.Fprintf(ts.Stdout(), "%d calls\n", len(calls))
		for _, c := range calls {
			fmt.Fprintln(ts.Stdout(), c)
		}
		// Skipped calls run beside the others (STS asks who runs oops while
		// the switch goes on), so only their number is stable.
		for _, sk := range skip {
			if n := p.Count(sk); n > 0 {
				fmt.Fprintf(ts.Stdout(), "beside: %d %s\n", n, sk)
			}
		}
		p.Clear()
	}
}

func noNeg(ts *testscript.TestScript, neg bool) {
	if neg {
		ts.Fatalf("unsupported: !")
	}
}

// awsCtx bounds one setup call.
func awsCtx(ts *testscript.TestScript) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	ts.Defer(cancel)
	return ctx
}
