package alb_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// stickiness reads listener port's target-group stickiness from moto.
func (e *env) stickiness(port int) (bool, int32) {
	e.t.Helper()
	out, err := elbv2.NewFromConfig(e.direct).DescribeListeners(e.ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{e.alb.Listeners[port]}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range out.Listeners[0].DefaultActions {
		if a.ForwardConfig != nil && a.ForwardConfig.TargetGroupStickinessConfig != nil {
			sc := a.ForwardConfig.TargetGroupStickinessConfig
			return aws.ToBool(sc.Enabled), aws.ToInt32(sc.DurationSeconds)
		}
	}
	return false, 0
}

// "Stickiness takes precedence over weight": with it on, clients stuck to
// the bad color keep reaching it after a rollback. A full switch turns it
// off in the same ModifyListener and says so; the setting is recorded on
// the target groups, status shows it, and the next canary puts it back.
func TestFullSwitchTurnsStickinessOffAndCanaryPutsItBack(t *testing.T) {
	e := setup(t, albtest.Options{Ports: []int{80, 443}})
	sticky := e.alb.Forward(release.Blue, 100)
	sticky[0].ForwardConfig.TargetGroupStickinessConfig = &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(600)}
	if _, err := elbv2.NewFromConfig(e.direct).ModifyListener(e.ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(e.alb.Listeners[443]), DefaultActions: sticky}); err != nil {
		t.Fatal(err)
	}
	tg := e.target(alb.Config{})
	st, err := tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Listeners, "; "); !strings.Contains(got, "HTTPS:443 -> "+e.alb.Names[release.Blue]+" 100% (sticky 600s)") {
		t.Errorf("status does not show the stickiness: %s", got)
	}
	res, err := target.Switch(e.ctx, tg, target.SwitchOptions{VerifyTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	plan := res.Plan.String()
	for _, w := range []string{"stickiness off (was on for 600s", "stickiness takes precedence over weight", "AddTags oops:stickiness=600"} {
		if !strings.Contains(plan, w) {
			t.Errorf("plan does not say %q:\n%s", w, plan)
		}
	}
	if on, _ := e.stickiness(443); on {
		t.Error("stickiness still on after the rollback: clients stuck to blue keep reaching it")
	}
	if e.weights(443) != "blue=0 green=100" {
		t.Errorf("443 forwards %s", e.weights(443))
	}
	if n := e.proxy.Count("ModifyListener"); n != 2 {
		t.Errorf("%d ModifyListener calls, want 2 (stickiness in the same call)", n)
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		if v, err := e.alb.Tag(e.ctx, e.direct, c, "oops:stickiness"); err != nil || v != "600" {
			t.Errorf("%s group: oops:stickiness = %q, %v; want 600", c, v, err)
		}
	}
	st, err = tg.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Listeners, "; "); !strings.Contains(got, "stickiness off (600s recorded in oops:stickiness") {
		t.Errorf("status does not show the recorded stickiness: %s", got)
	}

	// A canary of blue puts the recorded stickiness back.
	if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Blue, Weight: 10, Force: true}); err != nil {
		t.Fatal(err)
	}
	if on, d := e.stickiness(443); !on || d != 600 {
		t.Errorf("after the canary: stickiness %v %ds, want on 600s", on, d)
	}
	if e.weights(443) != "blue=10 green=90" {
		t.Errorf("443 forwards %s", e.weights(443))
	}
}

// setSticky sets listener port to forward percent on c with stickiness
// (0: off), as an operator would by hand.
func (e *env) setSticky(port int, c release.Color, percent int, seconds int32) {
	e.t.Helper()
	a := e.alb.Forward(c, percent)
	sc := &types.TargetGroupStickinessConfig{Enabled: aws.Bool(false)}
	if seconds > 0 {
		sc = &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(seconds)}
	}
	a[0].ForwardConfig.TargetGroupStickinessConfig = sc
	if _, err := elbv2.NewFromConfig(e.direct).ModifyListener(e.ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(e.alb.Listeners[port]), DefaultActions: a}); err != nil {
		e.t.Fatal(err)
	}
}

// The record is what the operator had last, not what they had once: a
// canary that put stickiness back has used the record, so a setting the
// operator changes afterwards (a shorter duration, or off) is what the
// next full switch records and the next canary restores.
func TestStickinessRecordFollowsTheOperatorsLaterSetting(t *testing.T) {
	tests := []struct {
		name    string
		seconds int32 // set by hand after the canary put 600s back
		wantOn  bool
		wantDur int32
	}{
		{"shorter", 60, true, 60},
		{"off", 0, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, albtest.Options{Ports: []int{80}})
			e.setSticky(80, release.Blue, 100, 600)
			tg := e.target(alb.Config{})
			// Rollback (stickiness off, 600 recorded), then a canary of
			// blue (600 back on).
			if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Blue, Weight: 10, Force: true}); err != nil {
				t.Fatal(err)
			}
			if on, d := e.stickiness(80); !on || d != 600 {
				t.Fatalf("after the canary: stickiness %v %ds, want on 600s", on, d)
			}
			// The operator changes it by hand; then a full switch and a
			// canary again.
			e.setSticky(80, release.Blue, 10, tc.seconds)
			if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Green, Force: true}); err != nil {
				t.Fatal(err)
			}
			if on, _ := e.stickiness(80); on {
				t.Fatal("stickiness on after the full switch")
			}
			if _, err := target.Switch(e.ctx, tg, target.SwitchOptions{To: release.Blue, Weight: 10, Force: true}); err != nil {
				t.Fatal(err)
			}
			if on, d := e.stickiness(80); on != tc.wantOn || d != tc.wantDur {
				t.Errorf("after the second canary: stickiness %v %ds, want %v %ds (the operator's last setting)", on, d, tc.wantOn, tc.wantDur)
			}
		})
	}
}
