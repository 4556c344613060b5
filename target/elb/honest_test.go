package elb_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// changePolicyByHand attaches a new SSL policy to 443 directly at moto (as
// someone would in the console), leaving the oops:listeners record stale.
func changePolicyByHand(e *env, name string) {
	e.t.Helper()
	api := elbsdk.NewFromConfig(awstest.Config(moto.URL))
	if _, err := api.CreateLoadBalancerPolicy(e.ctx, &elbsdk.CreateLoadBalancerPolicyInput{
		LoadBalancerName: aws.String(e.name), PolicyName: aws.String(name), PolicyTypeName: aws.String("SSLNegotiationPolicyType"),
		PolicyAttributes: []types.PolicyAttribute{{AttributeName: aws.String("Reference-Security-Policy"), AttributeValue: aws.String("ELBSecurityPolicy-TLS13-1-2-2021-06")}},
	}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := api.SetLoadBalancerPoliciesOfListener(e.ctx, &elbsdk.SetLoadBalancerPoliciesOfListenerInput{
		LoadBalancerName: aws.String(e.name), LoadBalancerPort: 443, PolicyNames: []string{name},
	}); err != nil {
		e.t.Fatal(err)
	}
}

// A switch that fails (or is cut) at any step is undone (or, after its
// delete, finished) to exactly what it read at its start: the live TLS policy of 443 stays the one attached
// then, not the stale one the oops:listeners tag recorded earlier.
func TestUndoRestoresWhatWasReadNotTheRecord(t *testing.T) {
	t.Parallel()
	const current = "oops-tls13"
	steps := []string{"AddTags", "ConfigureHealthCheck", "DeleteLoadBalancerListeners", "CreateLoadBalancerListeners", "SetLoadBalancerPoliciesOfListener"}
	for _, action := range steps {
		for _, mode := range []string{"fail", "cut-after"} {
			if action == "SetLoadBalancerPoliciesOfListener" && mode == "cut-after" {
				continue // the last call made: the switch is complete
			}
			t.Run(action+"/"+mode, func(t *testing.T) {
				t.Parallel()
				e := setup(t, elbtest.Fixture{Listeners: elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy)}, elb.Options{})
				// A deploy records the listeners (SSLPolicy on 443) ...
				if err := e.tgt.SetCommit(e.ctx, release.Blue, strings.Repeat("1", 40)); err != nil {
					t.Fatal(err)
				}
				if _, ok := e.snap().Tags["oops:listeners"]; !ok {
					t.Fatal("SetCommit did not record the listeners")
				}
				// ... then the TLS policy is changed on purpose.
				changePolicyByHand(e, current)
				r := faultproxy.Rule{Action: action, Times: 1}
				if mode == "fail" {
					r.Status, r.Body = 503, faultproxy.QueryError("ServiceUnavailable", "injected")
				} else {
					r.Cut, r.After = true, true
				}
				e.proxy.Add(r)
				_, err := switchTo(e, target.SwitchOptions{})
				// Once the delete took effect the switch is finished
				// instead, with the same policies.
				want := release.Blue
				if slices.Index(steps, action) > slices.Index(steps, "DeleteLoadBalancerListeners") ||
					action == "DeleteLoadBalancerListeners" && mode == "cut-after" {
					want = release.Green
				}
				if want == release.Blue && (err == nil || errors.Is(err, target.ErrInconsistent)) {
					t.Fatalf("Switch = %v, want a failure that was undone", err)
				}
				if want == release.Green && err != nil {
					t.Fatalf("Switch = %v, want it finished", err)
				}
				if got := e.requireOneColor(current); got != want {
					t.Errorf("%s is live, want %s\n%s", got, want, e.log)
				}
			})
		}
	}
}

// A listener policy that could not be put back (AWS refuses it for the
// switch and for its undo) is an inconsistent state: status says so (exit
// 8) with the exact commands that fix it; the next switch refuses rather
// than record the listener without it; oops repair puts it back.
func TestPolicyNotPutBackIsInconsistent(t *testing.T) {
	t.Parallel()
	for _, next := range []string{"repair", "rollback"} {
		t.Run(next, func(t *testing.T) {
			t.Parallel()
			e := setup(t, elbtest.Fixture{Listeners: elbtest.Default80443(elbtest.FakeCert, elbtest.SSLPolicy)}, elb.Options{})
			e.proxy.Add(faultproxy.Rule{Action: "SetLoadBalancerPoliciesOfListener", Times: 2, Status: 503, Body: faultproxy.QueryError("ServiceUnavailable", "injected")})
			_, err := switchTo(e, target.SwitchOptions{})
			if !errors.Is(err, target.ErrInconsistent) || !strings.Contains(hintOf(err), "oops repair") {
				t.Fatalf("Switch = %v (hint %q), want ErrInconsistent and oops repair", err, hintOf(err))
			}
			e.proxy.Clear()

			// status: inconsistent, with the fix.
			st, err := e.tgt.State(e.ctx)
			if !errors.Is(err, target.ErrInconsistent) {
				t.Fatalf("State = %v, want ErrInconsistent (status exits 8)", err)
			}
			if st == nil {
				t.Fatal("no state with the error")
			}
			for _, w := range []string{"oops repair", "aws elb set-load-balancer-policies-of-listener --load-balancer-name " + e.name + " --load-balancer-port 443 --policy-names " + elbtest.SSLPolicy} {
				if !strings.Contains(err.Error()+"\n"+hintOf(err), w) {
					t.Errorf("status does not say %q:\n%v\n%s", w, err, hintOf(err))
				}
			}

			// The next plain switch refuses and changes nothing.
			before := e.snap()
			if _, err := switchTo(e, target.SwitchOptions{}); !errors.Is(err, target.ErrInconsistent) {
				t.Errorf("next switch = %v, want a refusal", err)
			}
			if m := e.mutating(); len(m) != 0 {
				t.Errorf("the refused switch made %v", m)
			}
			if after := e.snap(); after.String() != before.String() {
				t.Errorf("the refused switch changed the ELB:\n%s\n%s", before, after)
			}

			switch next {
			case "repair":
				if _, err := e.tgt.Repair(e.ctx); err != nil {
					t.Fatal(err)
				}
			case "rollback":
				// oops rollback finishes the interrupted switch first.
				if _, err := switchTo(e, target.SwitchOptions{Resume: true}); err != nil {
					t.Fatal(err)
				}
			}
			e.requireOneColor(elbtest.SSLPolicy)
			if got := e.snap().Listeners; !slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "policies="+elbtest.SSLPolicy) }) {
				t.Errorf("policy not back: %v", got)
			}
		})
	}
}

// A deploy marks the off color installing before CodeDeploy touches it, so
// a deploy killed half-way never leaves the old commit looking warm there;
// SetCommit, once it passed, clears the mark.
func TestInstallingUntilSetCommit(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	old, sha := strings.Repeat("1", 40), strings.Repeat("2", 40)
	var tg target.Target = e.tgt
	if err := tg.SetCommit(e.ctx, release.Green, old); err != nil {
		t.Fatal(err)
	}
	ir, ok := tg.(target.InstallRecorder)
	if !ok {
		t.Fatal("the ELB target does not record installs")
	}
	if err := ir.SetInstalling(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	st, err := e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Off.Commit != sha || !st.Off.Installing {
		t.Errorf("off = %s installing=%v, want %s installing", st.Off.Commit, st.Off.Installing, sha)
	}
	if st.Live.Installing {
		t.Error("live marked installing")
	}
	// An install that never started ("" clears the mark): the old record
	// is back.
	if err := ir.SetInstalling(e.ctx, release.Green, ""); err != nil {
		t.Fatal(err)
	}
	if st, err := e.tgt.State(e.ctx); err != nil || st.Off.Commit != old || st.Off.Installing {
		t.Fatalf("after clearing the mark off = %+v (%v), want %s verified", st.Off, err, old)
	}
	if err := ir.SetInstalling(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	if err := tg.SetCommit(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	st, err = e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Off.Commit != sha || st.Off.Installing {
		t.Errorf("after SetCommit off = %s installing=%v, want %s verified", st.Off.Commit, st.Off.Installing, sha)
	}
}
