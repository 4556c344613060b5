package alb_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// server is the one moto_server of this package (or why there is none).
var server struct {
	moto *awstest.Moto
	err  error
}

func TestMain(m *testing.M) {
	server.moto, server.err = awstest.StartServer()
	code := m.Run()
	if server.moto != nil {
		server.moto.Stop()
	}
	os.Exit(code)
}

// env is one test's ALB on moto, reached through a counting fault proxy.
type env struct {
	t     *testing.T
	ctx   context.Context
	proxy *faultproxy.Proxy
	// direct talks to moto without the proxy: fixtures and checks are
	// not counted and never faulted.
	direct aws.Config
	alb    *albtest.ALB
}

func setup(t *testing.T, o albtest.Options) *env {
	t.Helper()
	if server.moto == nil {
		awstest.Unavailable(t, server.err)
	}
	t.Parallel()
	// Unique per run too: go test -count=N reuses test names on one moto.
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", t.Name(), time.Now().UnixNano())
	o.Name = fmt.Sprintf("t%08x", h.Sum32())
	e := &env{t: t, ctx: awstest.Ctx(t), direct: server.moto.Config()}
	var err error
	if e.alb, err = albtest.New(e.ctx, e.direct, o); err != nil {
		t.Fatal(err)
	}
	e.proxy = faultproxy.NewT(t, server.moto.URL)
	return e
}

// target opens the ALB through the proxy; cfg.Name defaults to the ALB.
func (e *env) target(cfg alb.Config) *alb.Target {
	e.t.Helper()
	if cfg.Name == "" && cfg.ListenerARN == "" {
		cfg.Name = e.alb.Name
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	tg, err := alb.New(elbv2.NewFromConfig(awstest.Config(e.proxy.URL)), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return tg
}

// weights is what the listener on port forwards, e.g. "blue=90 green=10".
func (e *env) weights(port int) string {
	e.t.Helper()
	w, err := e.alb.Weights(e.ctx, e.direct, port)
	if err != nil {
		e.t.Fatal(err)
	}
	return fmtWeights(w)
}

func (e *env) ruleWeights() string {
	e.t.Helper()
	w, err := e.alb.RuleWeights(e.ctx, e.direct)
	if err != nil {
		e.t.Fatal(err)
	}
	return fmtWeights(w)
}

func fmtWeights(w map[string]int) string {
	return fmt.Sprintf("blue=%d green=%d", w["blue"], w["green"])
}

func (e *env) set(port int, c release.Color, percent int) {
	e.t.Helper()
	if err := e.alb.SetForward(e.ctx, e.direct, port, c, percent); err != nil {
		e.t.Fatal(err)
	}
}

// unhealthy makes DescribeTargetHealth answer that every target of
// whichever group is asked about is unhealthy: a simulation, since moto
// reports every registered target healthy. The first skip calls pass.
func (e *env) unhealthy(skip int, state, reason string) {
	e.proxy.Add(faultproxy.Rule{Action: "DescribeTargetHealth", Skip: skip, Status: 200,
		Body: albtest.HealthBody(state, reason, "10.0.1.110", "10.0.1.111")})
}

func colors(st *target.State) string {
	s := fmt.Sprintf("live=%s:%d off=%s:%d", st.Live.Color, st.Live.Weight, st.Off.Color, st.Off.Weight)
	if st.Base != "" {
		s += " base=" + string(st.Base)
	}
	return s
}

func TestState(t *testing.T) {
	tests := []struct {
		name string
		opts albtest.Options
		// prepare changes the ALB after it is built.
		prepare func(e *env)
		cfg     func(e *env) alb.Config
		want    string
		wantErr error
		errHas  []string
	}{
		{name: "plain forward, off color found by tag outside the listener", opts: albtest.Options{},
			want: "live=blue:100 off=green:0"},
		{name: "weighted forward with the off color at 0", opts: albtest.Options{Weighted: true, Live: release.Green},
			want: "live=green:100 off=blue:0"},
		{name: "canary below half", opts: albtest.Options{},
			prepare: func(e *env) { e.set(80, release.Green, 10) },
			want:    "live=blue:90 off=green:10 base=blue"},
		{name: "colors named in oopsrc, no tags", opts: albtest.Options{Untagged: true, Weighted: true},
			cfg: func(e *env) alb.Config {
				return alb.Config{BlueTargetGroup: e.alb.Names[release.Blue], GreenTargetGroup: e.alb.Groups[release.Green]}
			},
			want: "live=blue:100 off=green:0"},
		{name: "relative weights are reported as percentages", opts: albtest.Options{},
			prepare: func(e *env) {
				a := e.alb.Forward(release.Blue, 1)
				a[0].ForwardConfig.TargetGroups[1].Weight = aws.Int32(2)
				_, err := elbv2.NewFromConfig(e.direct).ModifyListener(e.ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(e.alb.Listeners[80]), DefaultActions: a})
				if err != nil {
					e.t.Fatal(err)
				}
			},
			want: "live=green:67 off=blue:33 base=green"},
		{name: "one listener by ARN", opts: albtest.Options{Ports: []int{80, 443}},
			prepare: func(e *env) { e.set(443, release.Green, 100) },
			cfg:     func(e *env) alb.Config { return alb.Config{ListenerARN: e.alb.Listeners[443]} },
			want:    "live=green:100 off=blue:0"},
		{name: "listeners disagree", opts: albtest.Options{Ports: []int{80, 443}, Weighted: true},
			prepare: func(e *env) { e.set(80, release.Green, 100) },
			wantErr: target.ErrInconsistent,
			errHas:  []string{"listener HTTP:80 sends 100% to green", "listener HTTPS:443 sends 100% to blue", "switch from blue to green that stopped after listener HTTP:80"}},
		{name: "a rule disagrees with its listener", opts: albtest.Options{Rule: true, Weighted: true},
			prepare: func(e *env) { e.set(80, release.Green, 30) },
			wantErr: target.ErrInconsistent,
			errHas:  []string{"listener HTTP:80 sends 70% to blue", "rule 10 of listener HTTP:80 sends 100% to blue"}},
		{name: "no such ALB", opts: albtest.Options{},
			cfg:     func(e *env) alb.Config { return alb.Config{Name: "nope-" + e.alb.Name} },
			wantErr: target.ErrMisconfigured, errHas: []string{`no load balancer named "nope-`}},
		{name: "named group missing", opts: albtest.Options{Untagged: true},
			cfg: func(e *env) alb.Config {
				return alb.Config{BlueTargetGroup: e.alb.Names[release.Blue], GreenTargetGroup: "nope"}
			},
			wantErr: target.ErrMisconfigured, errHas: []string{"nope"}},
		{name: "untagged and not named", opts: albtest.Options{Untagged: true, Weighted: true},
			wantErr: target.ErrMisconfigured, errHas: []string{"no target group tagged oops:color=blue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, tt.opts)
			if tt.prepare != nil {
				tt.prepare(e)
			}
			cfg := alb.Config{}
			if tt.cfg != nil {
				cfg = tt.cfg(e)
			}
			st, err := e.target(cfg).State(e.ctx)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("State error = %v, want %v", err, tt.wantErr)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := colors(st); got != tt.want {
				t.Errorf("state %s, want %s", got, tt.want)
			}
			if st.Kind != "alb" || st.Name != e.alb.Name {
				t.Errorf("kind/name = %s/%s", st.Kind, st.Name)
			}
			if st.Live.TargetGroup != e.alb.Names[st.Live.Color] || st.Off.TargetGroup != e.alb.Names[st.Off.Color] {
				t.Errorf("target groups %s/%s, want %v", st.Live.TargetGroup, st.Off.TargetGroup, e.alb.Names)
			}
		})
	}
}

// TestSwitchEveryListenerAndRule switches an ALB with listeners 80 and 443
// and a color rule, keeping the off color at weight 0.
func TestSwitchEveryListenerAndRule(t *testing.T) {
	e := setup(t, albtest.Options{Ports: []int{80, 443}, Rule: true})
	sticky := e.alb.Forward(release.Blue, 100)
	sticky[0].ForwardConfig.TargetGroupStickinessConfig = &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(600)}
	if _, err := elbv2.NewFromConfig(e.direct).ModifyListener(e.ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(e.alb.Listeners[443]), DefaultActions: sticky}); err != nil {
		t.Fatal(err)
	}
	tg := e.target(alb.Config{})
	res, err := target.Switch(e.ctx, tg, target.SwitchOptions{VerifyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || res.Plan.To != release.Green {
		t.Fatalf("result %+v", res)
	}
	for _, port := range []int{80, 443} {
		if got := e.weights(port); got != "blue=0 green=100" {
			t.Errorf("listener %d forwards %s", port, got)
		}
	}
	if got := e.ruleWeights(); got != "blue=0 green=100" {
		t.Errorf("rule forwards %s", got)
	}
	if n := e.proxy.Count("ModifyListener"); n != 2 {
		t.Errorf("%d ModifyListener calls, want 2", n)
	}
	if n := e.proxy.Count("ModifyRule"); n != 1 {
		t.Errorf("%d ModifyRule calls, want 1", n)
	}
	out, err := elbv2.NewFromConfig(e.direct).DescribeListeners(e.ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{e.alb.Listeners[443]}})
	if err != nil {
		t.Fatal(err)
	}
	l := out.Listeners[0]
	// A full switch turns stickiness off (see sticky_test.go).
	if sc := l.DefaultActions[0].ForwardConfig.TargetGroupStickinessConfig; sc == nil || aws.ToBool(sc.Enabled) {
		t.Errorf("stickiness not turned off: %+v", sc)
	}
	if l.Protocol != types.ProtocolEnumHttps || len(l.Certificates) != 1 {
		t.Errorf("listener 443 lost its HTTPS settings: %s %v", l.Protocol, l.Certificates)
	}
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := colors(st); got != "live=green:100 off=blue:0" {
		t.Errorf("after switch: %s", got)
	}
}

// TestRollbackCalls counts the API calls of a rollback of a one-listener
// ALB: the figure the issue caps at 3.
func TestRollbackCalls(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(e *env) alb.Config
		gate   bool
		verify bool
		want   string
	}{
		{name: "listener-arn, forced, no verify", cfg: byListener,
			want: "DescribeRules DescribeTags ModifyListener"},
		{name: "listener-arn, health gate and verify", cfg: byListener, gate: true, verify: true,
			want: "DescribeRules DescribeTags DescribeTargetHealth ModifyListener DescribeTargetHealth"},
		{name: "alb-name, forced, no verify", cfg: func(*env) alb.Config { return alb.Config{} },
			want: "DescribeLoadBalancers DescribeListeners DescribeRules DescribeTags ModifyListener"},
		{name: "alb-name, health gate and verify", cfg: func(*env) alb.Config { return alb.Config{} }, gate: true, verify: true,
			want: "DescribeLoadBalancers DescribeListeners DescribeRules DescribeTags DescribeTargetHealth ModifyListener DescribeTargetHealth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, albtest.Options{Weighted: true, Live: release.Green})
			tg := e.target(tt.cfg(e))
			opts := target.SwitchOptions{Force: !tt.gate}
			if tt.verify {
				opts.VerifyTimeout = time.Second
			}
			if _, err := target.Switch(e.ctx, tg, opts); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(e.proxy.Calls(), " "); got != tt.want {
				t.Errorf("calls:\n got %s\nwant %s", got, tt.want)
			}
			if got := e.weights(80); got != "blue=100 green=0" {
				t.Errorf("after rollback the listener forwards %s", got)
			}
		})
	}
}

func byListener(e *env) alb.Config { return alb.Config{ListenerARN: e.alb.Listeners[80]} }

// TestHealthGate is a simulation: DescribeTargetHealth's answer is injected.
func TestHealthGate(t *testing.T) {
	tests := []struct {
		name       string
		state      string
		reason     string
		minHealthy *int
		force      bool
		wantErr    error
		errHas     string
	}{
		{name: "unhealthy targets refuse the switch", state: "unhealthy", reason: "Target.FailedHealthChecks",
			wantErr: target.ErrUnhealthy, errHas: "0 of 2 targets healthy, need 2: 10.0.1.110:8080 unhealthy (Target.FailedHealthChecks"},
		{name: "a detached group says why nothing checks it", state: "unused", reason: "Target.NotInUse",
			wantErr: target.ErrUnhealthy, errHas: "is not attached to the load balancer"},
		{name: "min-healthy 0 lets it through", state: "unhealthy", minHealthy: ptr(0)},
		{name: "force skips the gate", force: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, albtest.Options{})
			if !tt.force {
				e.unhealthy(0, tt.state, tt.reason)
			}
			_, err := target.Switch(e.ctx, e.target(alb.Config{MinHealthy: tt.minHealthy}), target.SwitchOptions{Force: tt.force})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				// Forced, health is not read at all (an unhealthy answer
				// injected here would never apply).
				if n := e.proxy.Count("DescribeTargetHealth"); tt.force && n != 0 {
					t.Errorf("forced switch made %d DescribeTargetHealth calls", n)
				}
				if got := e.weights(80); got != "blue=0 green=100" {
					t.Errorf("listener forwards %s, want green", got)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error = %v, want %v saying %q", err, tt.wantErr, tt.errHas)
			}
			if n := e.proxy.Count("ModifyListener"); n != 0 {
				t.Errorf("refused switch made %d ModifyListener calls", n)
			}
			if got := e.weights(80); got != "blue=100 green=0" {
				t.Errorf("refused switch changed the listener: %s", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestVerifyFailsSwitchesBack is a simulation: the gate sees healthy
// targets, verification after the switch sees unhealthy ones.
func TestVerifyFailsSwitchesBack(t *testing.T) {
	tests := []struct {
		name   string
		before func(e *env)
		opts   target.SwitchOptions
		want   string
		says   string
	}{
		{name: "full switch goes back to blue", want: "blue=100 green=0", says: "traffic is back on blue"},
		{name: "failed promotion goes back to the canary split",
			before: func(e *env) { e.set(80, release.Green, 10); e.set(443, release.Green, 10) },
			opts:   target.SwitchOptions{To: release.Green}, want: "blue=90 green=10", says: "traffic is back on the split it had (10% on green)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, albtest.Options{Ports: []int{80, 443}})
			if tt.before != nil {
				tt.before(e)
			}
			e.unhealthy(1, "unhealthy", "Target.FailedHealthChecks")
			tt.opts.VerifyTimeout = 50 * time.Millisecond
			res, err := target.Switch(e.ctx, e.target(alb.Config{}), tt.opts)
			if !errors.Is(err, target.ErrVerifyFailed) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error = %v, want verification failure saying %q", err, tt.says)
			}
			if !res.Reverted {
				t.Error("not reverted")
			}
			for _, p := range []int{80, 443} {
				if got := e.weights(p); got != tt.want {
					t.Errorf("listener %d forwards %s, want %s", p, got, tt.want)
				}
			}
		})
	}
}

// TestVerifyWaitsForNewTargets is a simulation: just after the switch the
// targets are still "initial"; verification waits for them instead of
// switching back.
func TestVerifyWaitsForNewTargets(t *testing.T) {
	e := setup(t, albtest.Options{})
	e.proxy.Add(faultproxy.Rule{Action: "DescribeTargetHealth", Skip: 1, Times: 2, Status: 200,
		Body: albtest.HealthBody("initial", "Elb.RegistrationInProgress", "10.0.1.110", "10.0.1.111")})
	res, err := target.Switch(e.ctx, e.target(alb.Config{}), target.SwitchOptions{VerifyTimeout: 10 * time.Second})
	if err != nil || res.Reverted {
		t.Fatalf("switch: %v (reverted %v)", err, res.Reverted)
	}
	if n := e.proxy.Count("DescribeTargetHealth"); n != 4 {
		t.Errorf("%d health reads, want 4 (gate, 2 waiting, 1 healthy)", n)
	}
	if got := e.weights(80); got != "blue=0 green=100" {
		t.Errorf("listener forwards %s", got)
	}
}

// TestInterruptedSwitch injects faults into ModifyListener on a
// two-listener ALB (80, 443). Whatever the fault, the next read reports
// the split exactly, and Repair puts every listener back on one color.
func TestInterruptedSwitch(t *testing.T) {
	refused := func(code string) faultproxy.Rule {
		return faultproxy.Rule{Action: "ModifyListener", Skip: 1, Status: 500, Body: faultproxy.QueryError(code, "injected")}
	}
	tests := []struct {
		name string
		rule faultproxy.Rule
		// timeout bounds the switch (for a hanging call).
		timeout time.Duration
		// failed: the switch reports an error; split: it leaves the
		// listeners disagreeing.
		failed, split bool
	}{
		{name: "second call refused", rule: refused("InternalFailure"), failed: true, split: true},
		{name: "second call throttled", rule: refused("Throttling"), failed: true, split: true},
		{name: "every call after the first refused", rule: faultproxy.Rule{Action: "ModifyListener", Skip: 1, Status: 400, Body: faultproxy.QueryError("AccessDenied", "no")}, failed: true, split: true},
		{name: "second call cut before AWS saw it", rule: faultproxy.Rule{Action: "ModifyListener", Skip: 1, Times: 1, Cut: true}, failed: true, split: true},
		{name: "second call hangs until the deadline", rule: faultproxy.Rule{Action: "ModifyListener", Skip: 1, Delay: time.Minute}, timeout: 2 * time.Second, failed: true, split: true},
		// A lost answer is read back: the switch carries on and succeeds.
		{name: "second call cut after AWS made the change", rule: faultproxy.Rule{Action: "ModifyListener", Skip: 1, Times: 1, Cut: true, After: true}},
		{name: "first call cut after AWS made the change", rule: faultproxy.Rule{Action: "ModifyListener", Times: 1, Cut: true, After: true}},
		{name: "first call refused", rule: faultproxy.Rule{Action: "ModifyListener", Times: 1, Status: 400, Body: faultproxy.QueryError("AccessDenied", "not allowed")}, failed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, albtest.Options{Ports: []int{80, 443}, Weighted: true})
			e.proxy.Add(tt.rule)
			ctx := e.ctx
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, err := target.Switch(ctx, e.target(alb.Config{}), target.SwitchOptions{})
			if (err != nil) != tt.failed {
				t.Fatalf("switch error = %v, want failure %v", err, tt.failed)
			}
			if tt.split && !errors.Is(err, target.ErrInconsistent) {
				t.Errorf("a half-done switch should say so: %v", err)
			}
			e.proxy.Clear()

			// The next command reads the truth from the listeners.
			st, err := e.target(alb.Config{}).State(e.ctx)
			if tt.split {
				if !errors.Is(err, target.ErrInconsistent) {
					t.Fatalf("state after the fault: %v, %v; want the split reported", st, err)
				}
				for _, s := range []string{"listener HTTP:80 sends 100% to green", "listener HTTPS:443 sends 100% to blue"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("split report %q does not say %q", err, s)
					}
				}
				if st == nil || st.Pending == nil || st.Pending.From != release.Blue || st.Pending.To != release.Green {
					t.Errorf("state %+v: want the interrupted blue -> green switch as Pending", st)
				}
				if st != nil && strings.Join(st.Listeners, "; ") != fmt.Sprintf("HTTP:80 -> %s 100%%; HTTPS:443 -> %s 100%%", e.alb.Names[release.Green], e.alb.Names[release.Blue]) {
					t.Errorf("listeners %q", st.Listeners)
				}
			} else if err != nil {
				t.Fatalf("state after the fault: %v", err)
			}

			msg, err := e.target(alb.Config{}).Repair(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.split != (msg != "") {
				t.Errorf("repair said %q (split=%v)", msg, tt.split)
			}
			if tt.split && !strings.Contains(msg, "put all traffic on blue: listener HTTPS:443, the last one oops changes") {
				t.Errorf("repair message %q does not say where traffic went and why", msg)
			}
			a, b := e.weights(80), e.weights(443)
			if a != b {
				t.Errorf("after repair: :80 %s, :443 %s", a, b)
			}
			if _, err := e.target(alb.Config{}).State(e.ctx); err != nil {
				t.Errorf("state after repair: %v", err)
			}
		})
	}
}

// TestResumeFinishesInterruptedSwitch: oops rollback (Switch with Resume)
// after a split goes where the interrupted switch was going.
func TestResumeFinishesInterruptedSwitch(t *testing.T) {
	e := setup(t, albtest.Options{Ports: []int{80, 443}, Weighted: true})
	e.set(80, release.Green, 100) // as if a switch to green stopped after :80
	res, err := target.Switch(e.ctx, e.target(alb.Config{}), target.SwitchOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Switched || res.Plan.To != release.Green {
		t.Errorf("result %+v", res)
	}
	for _, p := range []int{80, 443} {
		if got := e.weights(p); got != "blue=0 green=100" {
			t.Errorf("listener %d forwards %s", p, got)
		}
	}
}

// TestRepairAvoidsUnhealthyColor is a simulation: the color Repair would go
// back to is unhealthy, so it takes the other one.
func TestRepairAvoidsUnhealthyColor(t *testing.T) {
	e := setup(t, albtest.Options{Ports: []int{80, 443}, Weighted: true})
	e.set(80, release.Green, 100) // as if a switch to green stopped after :80
	e.proxy.Add(faultproxy.Rule{Action: "DescribeTargetHealth", Times: 1, Status: 200,
		Body: albtest.HealthBody("unhealthy", "Target.Timeout", "10.0.1.10", "10.0.1.11")})
	msg, err := e.target(alb.Config{}).Repair(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "put all traffic on green") || !strings.Contains(msg, "Target.Timeout") {
		t.Errorf("repair message %q", msg)
	}
	for _, p := range []int{80, 443} {
		if got := e.weights(p); got != "blue=0 green=100" {
			t.Errorf("listener %d forwards %s", p, got)
		}
	}
}

// TestCanary shifts a share of traffic to the off color, past half, and
// back: rollback returns to the color that had everything before.
func TestCanary(t *testing.T) {
	e := setup(t, albtest.Options{Ports: []int{80, 443}})
	tg := e.target(alb.Config{})
	step := func(opts target.SwitchOptions, want string) {
		t.Helper()
		if _, err := target.Switch(e.ctx, tg, opts); err != nil {
			t.Fatal(err)
		}
		st, err := tg.State(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := colors(st); got != want {
			t.Errorf("state %s, want %s", got, want)
		}
	}
	step(target.SwitchOptions{Weight: 10}, "live=blue:90 off=green:10 base=blue")
	if got := e.weights(443); got != "blue=90 green=10" {
		t.Errorf(":443 forwards %s", got)
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		if v, _ := e.alb.Tag(e.ctx, e.direct, c, alb.TagCanaryBase); v != "blue" {
			t.Errorf("%s %s=%q, want blue", c, alb.TagCanaryBase, v)
		}
	}
	step(target.SwitchOptions{To: release.Green, Weight: 60}, "live=green:60 off=blue:40 base=blue")
	step(target.SwitchOptions{}, "live=blue:100 off=green:0") // rollback
	step(target.SwitchOptions{Weight: 25}, "live=blue:75 off=green:25 base=blue")
	step(target.SwitchOptions{To: release.Green}, "live=green:100 off=blue:0") // promote
	// The next canary starts from green; the old marker must not leak in.
	step(target.SwitchOptions{Weight: 50}, "live=green:50 off=blue:50 base=green")
	step(target.SwitchOptions{}, "live=green:100 off=blue:0")
}

func TestSetCommit(t *testing.T) {
	e := setup(t, albtest.Options{Weighted: true})
	tg := e.target(alb.Config{})
	sha := strings.Repeat("ab", 20)
	if err := tg.SetCommit(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.alb.Tag(e.ctx, e.direct, release.Green, alb.TagCommit); v != sha {
		t.Errorf("green %s=%q", alb.TagCommit, v)
	}
	st, err := e.target(alb.Config{}).State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Off.Commit != sha || st.Live.Commit != "" {
		t.Errorf("commits live=%q off=%q", st.Live.Commit, st.Off.Commit)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		cfg    alb.Config
		errHas string
	}{
		{alb.Config{}, "set alb-name or listener-arn"},
		{alb.Config{ListenerARN: "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/1"}, "is not an application load balancer listener ARN"},
		{alb.Config{Name: "a", ListenerARN: "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/b/1/2"}, `belongs to ALB "b"`},
		{alb.Config{Name: "a", BlueTargetGroup: "x"}, "set both"},
		{alb.Config{Name: "a", BlueTargetGroup: "x", GreenTargetGroup: "x"}, "both \"x\""},
		{alb.Config{Name: "a", MinHealthy: ptr(-1)}, "min-healthy is -1"},
	}
	for _, tt := range tests {
		_, err := alb.New(nil, tt.cfg)
		if !errors.Is(err, target.ErrMisconfigured) || !strings.Contains(err.Error(), tt.errHas) {
			t.Errorf("New(%+v) = %v, want misconfigured saying %q", tt.cfg, err, tt.errHas)
		}
	}
}
