package alb

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// change is what Apply does for a plan.
type change struct {
	snap *snapshot
	to   mix
	// mark is the canary base to tag both target groups with first, or "".
	mark release.Color
	// sticky is the stickiness duration to record first (TagStickiness), or 0.
	sticky int32
	// restore: the calls put a recorded stickiness back; once they have,
	// the record is marked used (TagStickiness=0), so that what the
	// operator sets afterwards, off included, is what counts.
	restore bool
	calls   []call
}

// call is one ModifyListener (ruleARN empty) or ModifyRule.
type call struct {
	item    *item
	actions []types.Action
}

// stickinessFor decides it's stickiness in a move to want: a full switch
// turns it off (stickiness takes precedence over weight: clients stuck to
// the color switched away from would keep reaching it for up to its
// duration); a canary puts back what a full switch recorded. Nil: keep.
// why says it, for the plan.
func (s *snapshot) stickinessFor(it *item, want mix) (sc *types.TargetGroupStickinessConfig, why string) {
	on, d := it.stickiness()
	switch {
	case !want.split() && on:
		from := release.Blue
		if want == 100 {
			from = release.Green
		}
		return &types.TargetGroupStickinessConfig{Enabled: aws.Bool(false)},
			fmt.Sprintf("; stickiness off (was on for %ds: stickiness takes precedence over weight, so clients stuck to %s would keep reaching it)", d, from)
	case want.split() && !on && s.sticky > 0:
		return &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(s.sticky)},
			fmt.Sprintf("; stickiness back on for %ds (recorded in %s)", s.sticky, TagStickiness)
	}
	return nil, ""
}

// plan builds the calls that put s at weight percent on to. Listeners and
// rules already there are left alone, so a plan after an interrupted one
// makes only the calls that are still missing. why, when set, is the
// first step: the reason for a repair's color.
func (t *Target) plan(s *snapshot, to release.Color, weight int, why string) *target.Plan {
	want := mixFor(to, weight)
	c := &change{snap: s, to: want}
	var out []string // the plan's steps
	if why != "" {
		out = append(out, why)
	}
	if want.split() && s.split == nil {
		base := s.state.Live.Color
		if s.state.Base != "" {
			base = s.state.Base
		}
		if s.base != base {
			c.mark = base
			out = append(out, fmt.Sprintf("AddTags %s=%s on %s and %s (where a rollback returns to)",
				TagCanaryBase, base, s.groups[release.Blue].name, s.groups[release.Green].name))
		}
	}
	var steps []string
	for _, it := range s.items {
		if it.mix == want {
			continue
		}
		sc, stickWhy := s.stickinessFor(it, want)
		switch {
		case sc == nil:
		case aws.ToBool(sc.Enabled):
			c.restore = true
		default: // turned off here: record the longest duration
			_, d := it.stickiness()
			c.sticky = max(c.sticky, d)
		}
		c.calls = append(c.calls, call{item: it, actions: withMix(it, want, s.groups, sc)})
		op := "ModifyListener"
		if it.ruleARN != "" {
			op = "ModifyRule"
		}
		steps = append(steps, fmt.Sprintf("%s %s: forward %s; was %s%s", op, it.label, s.mixString(want), s.mixString(it.mix), stickWhy))
	}
	if c.sticky > 0 && c.sticky <= s.sticky {
		c.sticky = 0 // recorded already
	}
	if c.sticky > 0 {
		out = append(out, fmt.Sprintf("AddTags %s=%d on %s and %s (the stickiness turned off, for the next canary to put back)",
			TagStickiness, c.sticky, s.groups[release.Blue].name, s.groups[release.Green].name))
	}
	out = append(out, steps...)
	if c.restore {
		out = append(out, fmt.Sprintf("AddTags %s=0 on %s and %s (the record is used: what is set by hand from now on is what a full switch records)",
			TagStickiness, s.groups[release.Blue].name, s.groups[release.Green].name))
	}
	if len(c.calls) == 0 {
		out = append(out, fmt.Sprintf("nothing to change: every listener already forwards %s", s.mixString(want)))
	}
	return target.NewPlan(to.Other(), to, weight, out, func(ctx context.Context) error { return t.apply(ctx, c) })
}

// withMix returns it.actions with the forward action set to m. Both
// colors stay in the forward (one at weight 0) so that the ALB keeps
// health-checking the off color, which is what the health gate reads. Every
// other action and setting (order, authentication) is kept, and so is
// stickiness unless sc replaces it.
func withMix(it *item, m mix, groups map[release.Color]*group, sc *types.TargetGroupStickinessConfig) []types.Action {
	out := make([]types.Action, len(it.actions))
	for i, a := range it.actions {
		if a.AuthenticateOidcConfig != nil && a.AuthenticateOidcConfig.ClientSecret == nil {
			// Describe never returns the secret; ModifyListener keeps it only if told to.
			oidc := *a.AuthenticateOidcConfig
			oidc.UseExistingClientSecret = aws.Bool(true)
			a.AuthenticateOidcConfig = &oidc
		}
		out[i] = a
	}
	old := it.actions[it.fwd]
	fc := &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
		{TargetGroupArn: aws.String(groups[release.Blue].arn), Weight: aws.Int32(int32(m.of(release.Blue)))},
		{TargetGroupArn: aws.String(groups[release.Green].arn), Weight: aws.Int32(int32(m.of(release.Green)))},
	}}
	if old.ForwardConfig != nil {
		fc.TargetGroupStickinessConfig = old.ForwardConfig.TargetGroupStickinessConfig
	}
	if sc != nil {
		fc.TargetGroupStickinessConfig = sc
	}
	out[it.fwd] = types.Action{Type: types.ActionTypeEnumForward, Order: old.Order, ForwardConfig: fc}
	return out
}

// apply tags the canary base if needed, then makes the calls in order.
func (t *Target) apply(ctx context.Context, c *change) error {
	defer func() {
		t.mu.Lock()
		t.last = nil
		t.mu.Unlock()
	}()
	if c.mark != "" {
		arns := []string{c.snap.groups[release.Blue].arn, c.snap.groups[release.Green].arn}
		if _, err := t.api.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: arns, Tags: tags(TagCanaryBase, string(c.mark))}); err != nil {
			return t.explain("AddTags", TagCanaryBase+"="+string(c.mark), err)
		}
	}
	if c.sticky > 0 {
		// Before the change, so that the setting is never lost.
		arns := []string{c.snap.groups[release.Blue].arn, c.snap.groups[release.Green].arn}
		v := strconv.Itoa(int(c.sticky))
		if _, err := t.api.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: arns, Tags: tags(TagStickiness, v)}); err != nil {
			return t.explain("AddTags", TagStickiness+"="+v, err)
		}
	}
	var done []string
	for _, call := range c.calls {
		var err error
		if call.item.ruleARN == "" {
			_, err = t.api.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(call.item.listenerARN), DefaultActions: call.actions})
		} else {
			_, err = t.api.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(call.item.ruleARN), Actions: call.actions})
		}
		if err != nil && !isAPIError(err) && ctx.Err() == nil && t.landed(ctx, call, c.to) {
			err = nil // the answer was lost, not the change
		}
		if err != nil {
			op := "ModifyListener"
			if call.item.ruleARN != "" {
				op = "ModifyRule"
			}
			err = t.explain(op, call.item.label, err)
			if len(done) == 0 {
				if !isAPIError(err) {
					return target.Hinted(fmt.Errorf("%w (it may or may not have changed)", err), "run `oops status` to see where every listener forwards")
				}
				return err
			}
			verb := "forwards"
			if len(done) > 1 {
				verb = "forward"
			}
			return target.Hinted(fmt.Errorf("%w: %s stopped half-way: %s now %s %s; %w",
				target.ErrInconsistent, t, strings.Join(done, ", "), verb, c.snap.mixString(c.to), err),
				"run `oops status` to see every listener; `oops repair` puts them all on one color")
		}
		done = append(done, call.item.label)
	}
	if c.restore {
		arns := []string{c.snap.groups[release.Blue].arn, c.snap.groups[release.Green].arn}
		if _, err := t.api.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: arns, Tags: tags(TagStickiness, "0")}); err != nil {
			return target.Hinted(fmt.Errorf("%s: every listener now forwards %s with stickiness back on, but marking the record used failed: %w",
				t, c.snap.mixString(c.to), t.explain("AddTags", TagStickiness+"=0", err)),
				fmt.Sprintf("traffic is as planned; so that a later full switch records the current setting: aws elbv2 add-tags --resource-arns %s %s --tags Key=%s,Value=0",
					arns[0], arns[1], TagStickiness))
		}
	}
	return nil
}

// PlanRepair plans putting every listener and color rule on color to, or,
// when to is empty, on the color the last one in apply order shows: a
// switch that stopped half-way never reached it, so going there undoes a
// change that was never verified. If that color fails the health gate and
// the other passes, it takes the other. Nil when the listeners agree.
func (t *Target) PlanRepair(ctx context.Context, to release.Color) (*target.Plan, error) {
	if to != "" && !to.Valid() {
		return nil, fmt.Errorf("plan repair: %q is not a color", to)
	}
	s, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	if s.split == nil {
		if to == "" || to == s.state.Live.Color && s.state.Live.Weight == 100 {
			return nil, nil
		}
		return nil, fmt.Errorf("%s is consistent (every listener forwards %s): nothing to repair (to move traffic, run oops rollback, oops shift or oops promote)",
			t, s.mixString(s.items[0].mix))
	}
	why := fmt.Sprintf("put all traffic on %s, as asked", to)
	if to == "" {
		to = s.undo
		last := s.items[len(s.items)-1]
		why = fmt.Sprintf("put all traffic on %s: %s, the last one oops changes, still shows the state from before the interrupted change", to, last.label)
		if perr := t.probeGroup(ctx, to, s.groups[to]); perr != nil {
			other := to.Other()
			if oerr := t.probeGroup(ctx, other, s.groups[other]); oerr != nil {
				return nil, fmt.Errorf("repair %s: neither color passes the health gate, so oops will not choose one: %v; %w (choose with `oops repair --to COLOR`)", t, perr, oerr)
			}
			why = fmt.Sprintf("put all traffic on %s: %s would be the one to go back to, but %v", other, to, perr)
			to = other
		}
	}
	return t.plan(s, to, 100, why), nil
}

// Repair puts every listener on one color when they disagree (see
// PlanRepair) and says which color and why.
func (t *Target) Repair(ctx context.Context) (string, error) {
	p, err := t.PlanRepair(ctx, "")
	if err != nil || p == nil {
		return "", err
	}
	if err := t.Apply(ctx, p); err != nil {
		return "", fmt.Errorf("repair %s: %w", t, err)
	}
	return fmt.Sprintf("%s: %s", t, p.Steps[0]), nil
}

// landed reads again whether a call that got no answer took effect.
func (t *Target) landed(ctx context.Context, c call, want mix) bool {
	s, err := t.read(ctx)
	if err != nil {
		return false
	}
	for _, it := range s.items {
		if it.listenerARN == c.item.listenerARN && it.ruleARN == c.item.ruleARN {
			return it.mix == want
		}
	}
	return false
}
