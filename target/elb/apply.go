package elb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// call is one API call of a plan.
type call struct {
	op   string // the API operation, for errors
	text string // the exact call, for --dry-run
	run  func(ctx context.Context) error
	// settling is the error code with which AWS says an earlier call of
	// the switch has not settled yet: retried (see runSettled).
	settling string
	// fix is the command that does this call by hand, given with its error.
	fix string
}

// change is what a target.Plan stands for.
type change struct {
	from, to release.Color
	calls    []call
	// repair plans start from a broken state: there is nothing to undo to.
	repair bool
	// before is the read the plan was made from: what an undo restores.
	before *observation
}

// converge lists the calls that take the ELB from what o saw to every
// recorded listener on color to's port, the health check (when it is on a
// color port) on it too, and no oops:switch tag. restore re-attaches the
// policies recorded in oops:listeners where a listener's differ (repair);
// otherwise the listeners' current policies are kept (and recorded).
func (t *Target) converge(o *observation, to release.Color, restore bool) ([]call, error) {
	defs := slices.Clone(o.defs)
	if restore {
		for i, d := range defs {
			for _, dr := range o.drift {
				if dr.port == d.Port {
					defs[i].Policies = slices.Clone(dr.recorded)
				}
			}
		}
	}
	return t.convergeDefs(o, to, defs)
}

// convergeDefs lists the calls that take the ELB from what o saw to the
// listeners defs, all on color to's port (see converge).
func (t *Target) convergeDefs(o *observation, to release.Color, defs []listener) ([]call, error) {
	port := o.ports[to]
	present := map[int32]listener{}
	for _, l := range o.listeners {
		present[l.Port] = l
	}
	var del []int32
	var create, policies []listener
	for _, d := range defs {
		cur, ok := present[d.Port]
		switch {
		case ok && cur.InstancePort == port && cur.sameDef(d):
			if !slices.Equal(cur.Policies, d.Policies) {
				policies = append(policies, d)
			}
		case ok:
			del = append(del, d.Port)
			fallthrough
		default:
			create = append(create, d)
			if len(d.Policies) > 0 {
				policies = append(policies, d)
			}
		}
	}
	moving := len(del)+len(create) > 0
	marker := o.hc != nil && o.hcColor != ""

	// The health check (or the oops:switch tag) records where the switch
	// is going before the delete, the one call after which the ELB alone
	// no longer says where traffic was. Without a delete (recreating
	// missing listeners) traffic comes back first and the check follows.
	var pre, post []call
	var add []types.Tag
	if moving && !sameDefs(o.record, defs) {
		rec, err := t.recordTags(o, defs)
		if err != nil {
			return nil, err
		}
		add = append(add, rec...)
	}
	var intent *intentTag
	// Listeners created without their policies until the last calls
	// re-attach them: the switch is recorded as in progress until then,
	// so that a policy that could not be put back is never taken for one
	// removed on purpose (and dropped from the record by the next switch).
	reattach := reattachesPolicies(create)
	if (len(del) > 0 && !marker || reattach) && (o.intent == nil || o.intent.to != to) {
		intent = &intentTag{to: to, started: t.opts.Now(), by: t.opts.Who}
		add = append(add, types.Tag{Key: aws.String(tagIntent), Value: aws.String(intent.value())})
	}
	if len(add) > 0 {
		var kv []string
		for _, tg := range add {
			kv = append(kv, fmt.Sprintf("Key=%s,Value=%q", aws.ToString(tg.Key), aws.ToString(tg.Value)))
		}
		why := "records the listeners, so an interrupted switch can be finished"
		switch {
		case intent != nil && reattach:
			why = "records the listeners and the switch in progress, until their policies are re-attached"
		case intent != nil:
			why = "records the switch in progress (the health check is not on a color port)"
		}
		pre = append(pre, call{
			op:   "AddTags",
			text: fmt.Sprintf("AddTags %s %s  (%s)", t.name, strings.Join(kv, " "), why),
			run: func(ctx context.Context) error {
				_, err := t.api.AddTags(ctx, &elbsdk.AddTagsInput{LoadBalancerNames: []string{t.name}, Tags: add})
				return err
			},
		})
	}
	if marker && o.hc.Port != port {
		hc := o.hc
		why := "was " + hc.target(hc.Port)
		if len(del) > 0 {
			why += "; records the switch in progress"
		}
		c := call{
			op:   "ConfigureHealthCheck",
			text: fmt.Sprintf("ConfigureHealthCheck %s %s  (%s)", t.name, hc.cli(port), why),
			run: func(ctx context.Context) error {
				_, err := t.api.ConfigureHealthCheck(ctx, &elbsdk.ConfigureHealthCheckInput{LoadBalancerName: aws.String(t.name), HealthCheck: hc.sdk(port)})
				if err == nil {
					t.healthCheckMoved(hc)
				}
				return err
			},
		}
		if len(del) > 0 {
			pre = append(pre, c)
		} else {
			post = append(post, c)
		}
	}
	// Backend-server policies (ProxyProtocol, backend authentication) are
	// per instance port: the new port gets the old one's before any
	// listener moves, so that a failure here changes nothing.
	if moving {
		if c, ok := t.backendCall(o, to); ok {
			pre = append([]call{c}, pre...)
		}
	}
	calls := pre
	if len(del) > 0 {
		ps := make([]string, len(del))
		for i, p := range del {
			ps[i] = strconv.Itoa(int(p))
		}
		calls = append(calls, call{
			op:   "DeleteLoadBalancerListeners",
			text: fmt.Sprintf("DeleteLoadBalancerListeners %s LoadBalancerPorts=%s", t.name, strings.Join(ps, ",")),
			run: func(ctx context.Context) error {
				_, err := t.api.DeleteLoadBalancerListeners(ctx, &elbsdk.DeleteLoadBalancerListenersInput{LoadBalancerName: aws.String(t.name), LoadBalancerPorts: del})
				return err
			},
		})
	}
	if len(create) > 0 {
		var args []string
		var sdk []types.Listener
		for _, d := range create {
			args = append(args, d.cli(port))
			sdk = append(sdk, d.sdk(port))
		}
		calls = append(calls, call{
			op:       "CreateLoadBalancerListeners",
			settling: "DuplicateListener",
			text:     fmt.Sprintf("CreateLoadBalancerListeners %s %s", t.name, strings.Join(args, " ")),
			run: func(ctx context.Context) error {
				_, err := t.api.CreateLoadBalancerListeners(ctx, &elbsdk.CreateLoadBalancerListenersInput{LoadBalancerName: aws.String(t.name), Listeners: sdk})
				return err
			},
		})
	}
	for _, d := range policies {
		calls = append(calls, call{
			op:       "SetLoadBalancerPoliciesOfListener",
			settling: "ListenerNotFound",
			text:     fmt.Sprintf("SetLoadBalancerPoliciesOfListener %s LoadBalancerPort=%d PolicyNames=%s", t.name, d.Port, strings.Join(d.Policies, ",")),
			run: func(ctx context.Context) error {
				_, err := t.api.SetLoadBalancerPoliciesOfListener(ctx, &elbsdk.SetLoadBalancerPoliciesOfListenerInput{
					LoadBalancerName: aws.String(t.name), LoadBalancerPort: d.Port, PolicyNames: d.Policies})
				return err
			},
		})
	}
	calls = append(calls, post...)
	if o.intent != nil || intent != nil {
		calls = append(calls, call{
			op:   "RemoveTags",
			text: fmt.Sprintf("RemoveTags %s Key=%s  (the switch is complete)", t.name, tagIntent),
			run: func(ctx context.Context) error {
				_, err := t.api.RemoveTags(ctx, &elbsdk.RemoveTagsInput{LoadBalancerNames: []string{t.name}, Tags: []types.TagKeyOnly{{Key: aws.String(tagIntent)}}})
				return err
			},
		})
	}
	return calls, nil
}

// recordTags are the oops:listeners tags for defs, blanking chunks left
// over from a longer record.
func (t *Target) recordTags(o *observation, defs []listener) ([]types.Tag, error) {
	chunks, err := encodeRecord(defs)
	if err != nil {
		var re *recordError
		wrapped := fmt.Errorf("%w: classic ELB %s: %v", target.ErrMisconfigured, t.name, err)
		if errors.As(err, &re) {
			return nil, target.Hinted(wrapped, re.fix())
		}
		return nil, wrapped
	}
	var tags []types.Tag
	for i := 0; i < max(len(chunks), o.recordChunks); i++ {
		v := ""
		if i < len(chunks) {
			v = chunks[i]
		}
		tags = append(tags, types.Tag{Key: aws.String(listenersChunkKey(i)), Value: aws.String(v)})
	}
	return tags, nil
}

// newPlan is a plan that carries its change: Apply runs it once.
func (t *Target) newPlan(o *observation, from, to release.Color, calls []call, repair bool) *target.Plan {
	var steps []string
	for _, c := range calls {
		steps = append(steps, c.text)
	}
	if !repair && t.opts.HealthCheckURL == "" && len(calls) > 0 {
		steps = append(steps, o.gateNote(to))
	}
	ch := &change{from: from, to: to, calls: calls, repair: repair, before: o}
	return target.NewPlan(from, to, 100, steps, func(ctx context.Context) error { return t.apply(ctx, ch) })
}

// Plan lists the calls that move all traffic to color to.
func (t *Target) Plan(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
	if weight != 100 && weight != 0 {
		return nil, fmt.Errorf("%w: %s cannot split traffic (%d%%): a Classic ELB sends all of it to one color", target.ErrMisconfigured, t, weight)
	}
	if !to.Valid() {
		return nil, fmt.Errorf("plan switch: %q is not a color", to)
	}
	o := t.observed(st)
	if o == nil {
		var err error
		if o, err = t.observe(ctx); err != nil {
			return nil, err
		}
	}
	if o.problem != nil {
		return nil, o.problem
	}
	calls, err := t.converge(o, to, false)
	if err != nil {
		return nil, err
	}
	return t.newPlan(o, o.complete, to, calls, false), nil
}

// PlanRepair lists the calls that leave all traffic on one color: to, or
// the color the ELB's own records point at. Nil when nothing is wrong.
func (t *Target) PlanRepair(ctx context.Context, to release.Color) (*target.Plan, error) {
	o, err := t.observe(ctx)
	if err != nil {
		return nil, err
	}
	if to != "" && !to.Valid() {
		return nil, fmt.Errorf("plan repair: %q is not a color", to)
	}
	if o.problem == nil && len(o.drift) == 0 && (to == "" || to == o.complete) {
		return nil, nil
	}
	if o.problem == nil && to != "" && to != o.complete {
		return nil, fmt.Errorf("%s is consistent with %s live: nothing to repair (to switch to %s, run oops rollback)", t, o.complete, to)
	}
	if to == "" {
		to = o.repairTo
		if o.problem == nil {
			to = o.complete
		}
	}
	if to == "" {
		return nil, o.problem
	}
	calls, err := t.converge(o, to, true)
	if err != nil {
		return nil, err
	}
	from := o.traffic
	if from == "" || from == to {
		from = to.Other()
		if o.pending != nil {
			from = o.pending.From
		}
	}
	return t.newPlan(o, from, to, calls, true), nil
}

// Repair finishes or undoes an interrupted switch (see the package doc).
func (t *Target) Repair(ctx context.Context) (string, error) {
	p, err := t.PlanRepair(ctx, "")
	if err != nil || p == nil {
		return "", err
	}
	if err := t.Apply(ctx, p); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: all listeners point at %s (%d calls: %s)", t, p.To, len(p.Steps), strings.Join(ops(p.Steps), ", ")), nil
}

func ops(steps []string) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i], _, _ = strings.Cut(s, " ")
	}
	return out
}

// Apply makes the calls of p in order. When one fails, the ELB is read
// again: if the change turns out to be complete (the answer was lost) that
// is success; otherwise what was done is undone, and the error says
// whether that worked or oops repair is needed.
func (t *Target) Apply(ctx context.Context, p *target.Plan) error {
	// Whichever Target made p, this one's reads are out of date after it.
	defer t.forget()
	return p.Run(ctx)
}

// apply makes the calls of ch (see Apply) on the Target that planned them.
func (t *Target) apply(ctx context.Context, ch *change) error {
	defer t.forget()
	for i, c := range ch.calls {
		t.logf("%s", c.text)
		if err := t.runSettled(ctx, c); err != nil {
			cause := t.explain(c.op, err)
			if c.fix != "" {
				cause = target.Hinted(cause, "to do it by hand: "+c.fix)
			}
			return t.recover(ctx, ch, i, cause)
		}
	}
	t.checkMovedEarlier(ch)
	return nil
}

// checkMovedEarlier: a change that moves the listeners to a color whose
// port the health check already targets finishes a switch interrupted
// after its ConfigureHealthCheck, at a time unknown (maybe seconds ago).
// Instance states may still follow the old port's check, so Verify takes
// the move as made now: the safe side costs one judge time.
func (t *Target) checkMovedEarlier(ch *change) {
	o := ch.before
	if o == nil || o.hc == nil || o.hcColor != ch.to || !moved(o, ch.to) {
		return
	}
	for _, c := range ch.calls {
		if c.op == "ConfigureHealthCheck" {
			return // moved now: judged from then already
		}
	}
	t.healthCheckMoved(o.hc)
}

func (t *Target) recover(ctx context.Context, ch *change, failed int, cause error) error {
	// The operator's context may be what failed; repairing must not stop.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute+t.opts.SettleTimeout)
	defer cancel()
	o, err := t.observe(rctx)
	if err != nil {
		return target.Hinted(fmt.Errorf("%w: %w; reading the ELB back failed too: %v", target.ErrInconsistent, cause, err), "run `oops status`, then `oops repair`")
	}
	if ch.repair {
		if o.complete == ch.to && len(o.drift) == 0 {
			t.logf("%s failed (%v), but the ELB shows the change complete: %s is live", ch.calls[failed].op, cause, ch.to)
			return nil
		}
		return target.Hinted(fmt.Errorf("%w: repair stopped: %w", target.ErrInconsistent, cause), "run `oops repair` again")
	}
	for reread := false; ; reread = true {
		if done, err := t.finished(rctx, o, ch); err != nil || done {
			if done {
				t.logf("%s failed (%v), but the ELB shows the change complete: %s is live", ch.calls[failed].op, cause, ch.to)
			}
			return err
		}
		if ch.deleteSent(failed) && moved(o, ch.from) {
			return t.finishForward(rctx, o, ch, failed, cause)
		}
		// Undo to exactly what the switch read at its start (listeners and
		// their policies, health check), never to an older record in the tags.
		calls, err := t.convergeDefs(o, ch.from, ch.before.defs)
		// A read right after a change may not show it yet: look again
		// before saying nothing changed, and before undoing after the
		// delete was sent (a read showing the health check moved but the
		// listeners not yet deleted would have the undo move the check
		// back and report the old color live, with no listeners).
		if !reread && err == nil && (len(calls) == 0 || ch.deleteSent(failed)) {
			if t.opts.Sleep(rctx, settleRead) == nil {
				if o2, err := t.observe(rctx); err == nil {
					o = o2
					continue
				}
			}
		}
		if err == nil && len(calls) == 0 {
			return fmt.Errorf("switch to %s: %w; nothing changed: %s is still live", ch.to, cause, ch.from)
		}
		t.logf("%s failed after %d of %d calls: undoing the switch, %s stays live", ch.calls[failed].op, failed, len(ch.calls), ch.from)
		if err == nil {
			err = t.runAll(rctx, calls)
		}
		if err != nil {
			return target.Hinted(fmt.Errorf("%w: switch to %s failed half-way: %w; undoing it failed too: %v", target.ErrInconsistent, ch.to, cause, err),
				"run `oops status` to see what is missing, then `oops repair` as soon as AWS answers again")
		}
		return fmt.Errorf("switch to %s: %w; undone: %s is live again", ch.to, cause, ch.from)
	}
}
