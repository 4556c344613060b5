package alb

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// mix is a traffic split between the colors: the percentage on blue, green
// getting the rest.
type mix int

func mixFor(to release.Color, weight int) mix {
	if to == release.Blue {
		return mix(weight)
	}
	return mix(100 - weight)
}

func (m mix) of(c release.Color) int {
	if c == release.Blue {
		return int(m)
	}
	return 100 - int(m)
}

func (m mix) split() bool { return m > 0 && m < 100 }

func (m mix) String() string {
	switch m {
	case 100:
		return "blue 100%"
	case 0:
		return "green 100%"
	}
	return fmt.Sprintf("blue %d%%, green %d%%", m, 100-m)
}

// larger is the color with more traffic; at 50/50, tie.
func (m mix) larger(tie release.Color) release.Color {
	switch {
	case m > 50:
		return release.Blue
	case m < 50:
		return release.Green
	}
	return tie
}

// group is one color's target group.
type group struct {
	arn, name string
	vpc       string
	commit    string
	// base is this group's oops:canary-base tag.
	base string
	// sticky is this group's oops:stickiness tag.
	sticky string
	// installing is this group's oops:installing tag (TagInstalling).
	installing string
}

// item is one place that forwards to the colors: a listener's default
// action or a listener rule.
type item struct {
	// name is short, for status ("HTTPS:443", "HTTPS:443 rule 10");
	// label is for sentences ("listener HTTPS:443").
	name, label string
	listenerARN string
	// ruleARN is empty for a listener's default actions.
	ruleARN string
	actions []types.Action
	// fwd is the index of the forward action in actions.
	fwd int
	mix mix
}

// snapshot is one read of the ALB.
type snapshot struct {
	// lb is the load balancer's name; name is the target's (String()).
	lb, name string
	groups   map[release.Color]*group
	// items are in the order Apply changes them.
	items []*item
	// base is the canary base both groups' tags agree on, or "".
	base release.Color
	// sticky is the stickiness duration a full switch turned off
	// (TagStickiness, the longer of the two groups'), or 0.
	sticky int32
	// state is what State returns; Live and Off carry no weights when
	// the listeners disagree.
	state *target.State
	// split says how the listeners disagree (wraps target.ErrInconsistent).
	split error
	// undo is, when split, the color of the last listener or rule in apply
	// order: what an interrupted switch left as it was.
	undo release.Color
}

func (s *snapshot) describe() string {
	parts := make([]string, len(s.items))
	for i, it := range s.items {
		parts[i] = fmt.Sprintf("%s sends %s", it.label, s.mixString(it.mix))
	}
	return strings.Join(parts, ", ")
}

// mixString names the target groups: "blue-tg 90%, green-tg 10%".
func (s *snapshot) mixString(m mix) string {
	b, g := s.groups[release.Blue], s.groups[release.Green]
	switch m {
	case 100:
		return fmt.Sprintf("100%% to blue (%s)", b.name)
	case 0:
		return fmt.Sprintf("100%% to green (%s)", g.name)
	}
	return fmt.Sprintf("%d%% to blue (%s) and %d%% to green (%s)", m, b.name, 100-m, g.name)
}

// read asks AWS for everything State reports: the listeners (and their
// rules), the colors' target groups, and their tags. With listener-arn and
// both colors in the forward action that is two calls: DescribeRules and
// DescribeTags.
func (t *Target) read(ctx context.Context) (*snapshot, error) {
	s := &snapshot{lb: t.cfg.Name, name: t.String()}
	raws, vpc, err := t.items(ctx, s)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, it := range raws {
		for _, tg := range forwards(it.actions[it.fwd]) {
			if a := aws.ToString(tg.TargetGroupArn); a != "" && !slices.Contains(refs, a) {
				refs = append(refs, a)
			}
		}
	}
	if s.groups, err = t.resolve(ctx, refs, vpc); err != nil {
		return nil, err
	}
	colorOf := map[string]release.Color{}
	for c, g := range s.groups {
		colorOf[g.arn] = c
	}
	for _, it := range raws {
		var w [2]int32
		var ours bool
		var others []string
		for _, tg := range forwards(it.actions[it.fwd]) {
			c, ok := colorOf[aws.ToString(tg.TargetGroupArn)]
			if !ok {
				others = append(others, tgName(aws.ToString(tg.TargetGroupArn)))
				continue
			}
			ours = true
			if c == release.Blue {
				w[0] += weightOf(tg)
			} else {
				w[1] += weightOf(tg)
			}
		}
		if !ours {
			continue // a redirect, a fixed response or another application's target group
		}
		if len(others) > 0 {
			return nil, fmt.Errorf("%w: %s forwards to %s as well as to the colors; oops only moves traffic between %s and %s",
				target.ErrMisconfigured, it.label, strings.Join(others, ", "), s.groups[release.Blue].name, s.groups[release.Green].name)
		}
		if w[0]+w[1] <= 0 {
			return nil, fmt.Errorf("%w: %s forwards to both colors with weight 0", target.ErrInconsistent, it.label)
		}
		// Rounded to the nearest percent; the ALB's weights are relative.
		it.mix = mix((200*int(w[0]) + int(w[0]+w[1])) / (2 * int(w[0]+w[1])))
		s.items = append(s.items, it)
	}
	if len(s.items) == 0 {
		return nil, fmt.Errorf("%w: no listener of %s forwards to %s or %s", target.ErrMisconfigured, t, s.groups[release.Blue].name, s.groups[release.Green].name)
	}
	if b, g := s.groups[release.Blue].base, s.groups[release.Green].base; b == g && release.Color(b).Valid() {
		s.base = release.Color(b)
	}
	for _, g := range s.groups {
		if n, err := strconv.ParseInt(g.sticky, 10, 32); err == nil && n > 0 {
			s.sticky = max(s.sticky, int32(n))
		}
	}
	s.state = s.toState()
	t.mu.Lock()
	t.last, t.groups = s, s.groups
	t.mu.Unlock()
	return s, nil
}

// toState builds the State, and when the listeners disagree, the error
// that reports it. A disagreement whose listeners split into a prefix on
// one color and a suffix on the other is what a switch that stopped
// half-way leaves (Apply goes in order): it comes back as Pending, so that
// oops rollback can finish it and oops repair undo it, as on a Classic ELB.
func (s *snapshot) toState() *target.State {
	st := &target.State{Kind: "alb", Name: s.lb}
	for _, it := range s.items {
		line := fmt.Sprintf("%s -> %s", it.name, s.shortMix(it.mix))
		if on, d := it.stickiness(); on {
			line += fmt.Sprintf(" (sticky %ds)", d)
		} else if s.sticky > 0 {
			line += fmt.Sprintf(" (stickiness off (%ds recorded in %s): a full switch turned it off; the next canary puts it back)", s.sticky, TagStickiness)
		}
		st.Listeners = append(st.Listeners, line)
	}
	cs := func(c release.Color, m mix, weighted bool) target.ColorState {
		g := s.groups[c]
		out := target.ColorState{Color: c, Commit: g.commit, TargetGroup: g.name}
		if g.installing != "" {
			out.Commit, out.Installing = g.installing, true
		}
		if weighted {
			out.Weight = m.of(c)
		}
		return out
	}
	m := s.items[0].mix
	k := 1
	for k < len(s.items) && s.items[k].mix == m {
		k++
	}
	if k == len(s.items) {
		live := m.larger(release.Blue)
		if s.base != "" {
			live = m.larger(s.base)
		}
		st.Live, st.Off = cs(live, m, true), cs(live.Other(), m, true)
		if m.split() {
			st.Base = live
			if s.base != "" {
				st.Base = s.base
			}
		}
		return st
	}
	last := s.items[len(s.items)-1]
	tie := release.Blue
	if s.base != "" {
		tie = s.base
	}
	s.undo = last.mix.larger(tie)
	rest := s.items[k].mix
	prefix := true
	for _, it := range s.items[k:] {
		prefix = prefix && it.mix == rest
	}
	live := s.undo
	msg := fmt.Sprintf("%s is split: %s", s.name, s.describe())
	hint := fmt.Sprintf("run `oops repair` to put every listener on %s (what %s still shows), or `oops repair --to %s`", s.undo, last.label, s.undo.Other())
	if prefix && !m.split() && m.larger(tie) != s.undo {
		to := m.larger(tie)
		live = to
		st.Pending = &target.Intent{From: s.undo, To: to}
		msg += fmt.Sprintf("; this is what a switch from %s to %s that stopped after %s leaves (oops changes listeners in this order)", s.undo, to, s.items[k-1].label)
		hint = fmt.Sprintf("run `oops repair` to undo it (%s stays live), or `oops rollback` to finish it (%s goes live)", s.undo, to)
	}
	st.Live, st.Off = cs(live, m, false), cs(live.Other(), m, false)
	s.split = target.Hinted(fmt.Errorf("%w: %s", target.ErrInconsistent, msg), hint)
	return st
}

// shortMix is "web-blue 100%" or "web-blue 90%, web-green 10%".
func (s *snapshot) shortMix(m mix) string {
	b, g := s.groups[release.Blue].name, s.groups[release.Green].name
	switch m {
	case 100:
		return b + " 100%"
	case 0:
		return g + " 100%"
	}
	return fmt.Sprintf("%s %d%%, %s %d%%", b, m, g, 100-m)
}

// items lists the listeners' default actions and rules that forward
// somewhere, in apply order: listeners by port, each followed by its
// rules by priority. It returns the load balancer's VPC when it knows it.
func (t *Target) items(ctx context.Context, s *snapshot) ([]*item, string, error) {
	var out []*item
	if t.cfg.ListenerARN != "" {
		lb, id, _ := parseListenerARN(t.cfg.ListenerARN)
		s.lb = lb
		rules, err := t.rules(ctx, t.cfg.ListenerARN)
		if isNotFound(err, "ListenerNotFound") {
			return nil, "", fmt.Errorf("%w: listener-arn %s not found: check the region and the ARN", target.ErrMisconfigured, t.cfg.ListenerARN)
		}
		if err != nil {
			return nil, "", t.explain("DescribeRules", "listener "+id, err)
		}
		// DescribeRules does not say the port: name the listener by its id.
		l := &item{name: "listener " + id, label: "listener " + id, listenerARN: t.cfg.ListenerARN}
		for _, r := range rules {
			if aws.ToBool(r.IsDefault) {
				l.actions = r.Actions
			}
		}
		return appendRules(appendItem(out, l), l, rules), "", nil
	}
	lbs, err := t.api.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{t.cfg.Name}})
	if isNotFound(err, "LoadBalancerNotFound") {
		return nil, "", fmt.Errorf("%w: no load balancer named %q (alb-name): check the name and the region", target.ErrMisconfigured, t.cfg.Name)
	}
	if err != nil {
		return nil, "", t.explain("DescribeLoadBalancers", "", err)
	}
	if len(lbs.LoadBalancers) != 1 {
		return nil, "", fmt.Errorf("%w: no load balancer named %q (alb-name)", target.ErrMisconfigured, t.cfg.Name)
	}
	lb := lbs.LoadBalancers[0]
	if lb.Type != types.LoadBalancerTypeEnumApplication {
		return nil, "", fmt.Errorf("%w: %s is a %s load balancer; alb-name needs an application load balancer (a Classic ELB goes in elb-name)", target.ErrMisconfigured, t.cfg.Name, lb.Type)
	}
	var listeners []types.Listener
	in := &elbv2.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn}
	for {
		page, err := t.api.DescribeListeners(ctx, in)
		if err != nil {
			return nil, "", t.explain("DescribeListeners", "", err)
		}
		listeners = append(listeners, page.Listeners...)
		if aws.ToString(page.NextMarker) == "" {
			break
		}
		in.Marker = page.NextMarker
	}
	sort.Slice(listeners, func(i, j int) bool { return aws.ToInt32(listeners[i].Port) < aws.ToInt32(listeners[j].Port) })
	// One DescribeRules per listener, all at once: a rollback waits for
	// one round trip instead of one per listener.
	items := make([]*item, len(listeners))
	rules := make([][]types.Rule, len(listeners))
	errs := make([]error, len(listeners))
	var wg sync.WaitGroup
	for i, l := range listeners {
		name := fmt.Sprintf("%s:%d", l.Protocol, aws.ToInt32(l.Port))
		items[i] = &item{name: name, label: "listener " + name, listenerARN: aws.ToString(l.ListenerArn), actions: l.DefaultActions}
		wg.Go(func() { rules[i], errs[i] = t.rules(ctx, items[i].listenerARN) })
	}
	wg.Wait()
	for i, li := range items {
		if errs[i] != nil {
			return nil, "", t.explain("DescribeRules", li.label, errs[i])
		}
		out = appendRules(appendItem(out, li), li, rules[i])
	}
	return out, aws.ToString(lb.VpcId), nil
}

// rules reads every rule of a listener, the default one included.
func (t *Target) rules(ctx context.Context, listener string) ([]types.Rule, error) {
	var rules []types.Rule
	in := &elbv2.DescribeRulesInput{ListenerArn: aws.String(listener)}
	for {
		page, err := t.api.DescribeRules(ctx, in)
		if err != nil {
			return nil, err
		}
		rules = append(rules, page.Rules...)
		if aws.ToString(page.NextMarker) == "" {
			return rules, nil
		}
		in.Marker = page.NextMarker
	}
}

// appendRules adds listener l's rules (not the default one) by priority.
func appendRules(out []*item, l *item, rules []types.Rule) []*item {
	var rs []types.Rule
	for _, r := range rules {
		if !aws.ToBool(r.IsDefault) {
			rs = append(rs, r)
		}
	}
	prio := func(r types.Rule) int { n, _ := strconv.Atoi(aws.ToString(r.Priority)); return n }
	sort.SliceStable(rs, func(i, j int) bool { return prio(rs[i]) < prio(rs[j]) })
	for _, r := range rs {
		p := aws.ToString(r.Priority)
		out = appendItem(out, &item{
			name: l.name + " rule " + p, label: "rule " + p + " of " + l.label,
			listenerARN: l.listenerARN, ruleARN: aws.ToString(r.RuleArn), actions: r.Actions,
		})
	}
	return out
}

// appendItem keeps it when one of its actions forwards to a target group.
func appendItem(out []*item, it *item) []*item {
	for i, a := range it.actions {
		if len(forwards(a)) > 0 {
			it.fwd = i
			return append(out, it)
		}
	}
	return out
}

// forwards returns the target groups a forward action sends to.
func forwards(a types.Action) []types.TargetGroupTuple {
	if a.Type != types.ActionTypeEnumForward {
		return nil
	}
	if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
		return a.ForwardConfig.TargetGroups
	}
	if a.TargetGroupArn != nil {
		return []types.TargetGroupTuple{{TargetGroupArn: a.TargetGroupArn, Weight: aws.Int32(1)}}
	}
	return nil
}

// weightOf is a tuple's weight; AWS treats a missing one as 1.
func weightOf(tg types.TargetGroupTuple) int32 {
	if tg.Weight == nil {
		return 1
	}
	return *tg.Weight
}

// resolve finds the two colors' target groups and reads their tags: from
// .oopsrc (name or ARN) or by the tag oops:color among the target groups
// the listeners reference, looking further (in the load balancer's VPC)
// only for a color no listener references yet.
func (t *Target) resolve(ctx context.Context, refs []string, vpc string) (map[release.Color]*group, error) {
	groups := map[release.Color]*group{}
	if t.cfg.BlueTargetGroup != "" {
		names := map[string]release.Color{}
		for c, spec := range map[release.Color]string{release.Blue: t.cfg.BlueTargetGroup, release.Green: t.cfg.GreenTargetGroup} {
			switch i := slices.IndexFunc(refs, func(a string) bool { return a == spec || tgName(a) == spec }); {
			case strings.HasPrefix(spec, "arn:"):
				groups[c] = &group{arn: spec, name: tgName(spec)}
			case i >= 0:
				groups[c] = &group{arn: refs[i], name: spec}
			default:
				names[spec] = c
			}
		}
		if len(names) > 0 {
			out, err := t.api.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: sortedKeys(names)})
			if isNotFound(err, "TargetGroupNotFound") {
				return nil, fmt.Errorf("%w: target group %s (blue-target-group / green-target-group in .oopsrc) not found: %v", target.ErrMisconfigured, strings.Join(sortedKeys(names), " or "), err)
			}
			if err != nil {
				return nil, t.explain("DescribeTargetGroups", "", err)
			}
			for _, tg := range out.TargetGroups {
				if c, ok := names[aws.ToString(tg.TargetGroupName)]; ok {
					groups[c] = &group{arn: aws.ToString(tg.TargetGroupArn), name: aws.ToString(tg.TargetGroupName), vpc: aws.ToString(tg.VpcId)}
				}
			}
		}
		if groups[release.Blue] == nil || groups[release.Green] == nil {
			return nil, fmt.Errorf("%w: target group %s (blue-target-group / green-target-group in .oopsrc) not found", target.ErrMisconfigured, strings.Join(sortedKeys(names), " or "))
		}
		arns := []string{groups[release.Blue].arn, groups[release.Green].arn}
		tagged, err := t.tags(ctx, arns)
		if err != nil {
			return nil, err
		}
		for c, g := range groups {
			if v := tagged[g.arn][TagColor]; v != "" && v != string(c) {
				return nil, fmt.Errorf("%w: %s is %s-target-group in .oopsrc but tagged %s=%s", target.ErrMisconfigured, g.name, c, TagColor, v)
			}
			g.commit, g.base, g.sticky = tagged[g.arn][TagCommit], tagged[g.arn][TagCanaryBase], tagged[g.arn][TagStickiness]
			g.installing = tagged[g.arn][TagInstalling]
		}
		return groups, nil
	}

	tagged, err := t.tags(ctx, refs)
	if err != nil {
		return nil, err
	}
	if err := pick(groups, refs, tagged, nil); err != nil {
		return nil, err
	}
	if len(groups) < 2 {
		if err := t.scan(ctx, groups, refs, vpc); err != nil {
			return nil, err
		}
	}
	return groups, nil
}

// pick assigns colors from oops:color tags; vpcs, when given, are the
// candidates' VPCs (a found group's VPC narrows the other color's search).
func pick(groups map[release.Color]*group, arns []string, tagged map[string]map[string]string, vpcs map[string]string) error {
	found := map[release.Color][]string{}
	for _, a := range arns {
		v, ok := tagged[a][TagColor]
		if !ok {
			continue
		}
		c, err := release.ParseColor(v)
		if err != nil {
			return fmt.Errorf("%w: target group %s is tagged %s=%s; use blue or green", target.ErrMisconfigured, tgName(a), TagColor, v)
		}
		if _, known := groups[c]; !known {
			found[c] = append(found[c], a)
		}
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		switch as := found[c]; len(as) {
		case 0:
		case 1:
			groups[c] = &group{arn: as[0], name: tgName(as[0]), vpc: vpcs[as[0]], commit: tagged[as[0]][TagCommit], base: tagged[as[0]][TagCanaryBase],
				installing: tagged[as[0]][TagInstalling], sticky: tagged[as[0]][TagStickiness]}
		default:
			names := make([]string, len(as))
			for i, a := range as {
				names[i] = tgName(a)
			}
			return fmt.Errorf("%w: %d target groups are tagged %s=%s (%s); name the right one in .oopsrc as %s-target-group",
				target.ErrMisconfigured, len(as), TagColor, c, strings.Join(names, ", "), c)
		}
	}
	return nil
}

// scan looks through the region's target groups for a color no listener
// forwards to yet (before oops's first switch keeps both in the forward).
func (t *Target) scan(ctx context.Context, groups map[release.Color]*group, refs []string, vpc string) error {
	vpcs := map[string]string{}
	var arns []string
	in := &elbv2.DescribeTargetGroupsInput{}
	for {
		page, err := t.api.DescribeTargetGroups(ctx, in)
		if err != nil {
			return t.explain("DescribeTargetGroups", "", err)
		}
		for _, tg := range page.TargetGroups {
			a := aws.ToString(tg.TargetGroupArn)
			vpcs[a] = aws.ToString(tg.VpcId)
			if !slices.Contains(refs, a) {
				arns = append(arns, a)
			}
		}
		if aws.ToString(page.NextMarker) == "" {
			break
		}
		in.Marker = page.NextMarker
	}
	for _, g := range groups {
		if vpc == "" {
			vpc = vpcs[g.arn]
		}
	}
	if vpc != "" {
		arns = slices.DeleteFunc(arns, func(a string) bool { return vpcs[a] != vpc })
	}
	tagged, err := t.tags(ctx, arns)
	if err != nil {
		return err
	}
	if err := pick(groups, arns, tagged, vpcs); err != nil {
		return err
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		if groups[c] == nil {
			return fmt.Errorf("%w: no target group tagged %s=%s for %s: tag one, or name both in .oopsrc (blue-target-group, green-target-group)",
				target.ErrMisconfigured, TagColor, c, t)
		}
	}
	return nil
}

// tags reads the tags of arns, 20 (the API's limit) per call.
func (t *Target) tags(ctx context.Context, arns []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for batch := range slices.Chunk(arns, 20) {
		res, err := t.api.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: batch})
		if err != nil {
			return nil, t.explain("DescribeTags", "", err)
		}
		for _, d := range res.TagDescriptions {
			m := map[string]string{}
			for _, tg := range d.Tags {
				m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
			out[aws.ToString(d.ResourceArn)] = m
		}
	}
	return out, nil
}

func tags(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// tgName is the name inside a target group ARN
// (arn:...:targetgroup/NAME/ID); anything else is returned as is.
func tgName(arn string) string {
	_, res, ok := strings.Cut(arn, ":targetgroup/")
	if !ok {
		return arn
	}
	name, _, _ := strings.Cut(res, "/")
	return name
}

// parseListenerARN splits arn:...:listener/app/NAME/LBID/ID.
func parseListenerARN(arn string) (lb, id string, ok bool) {
	_, res, found := strings.Cut(arn, ":listener/app/")
	if !found || !strings.HasPrefix(arn, "arn:") {
		return "", "", false
	}
	parts := strings.Split(res, "/")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[2], true
}

// stickiness is the target-group stickiness of it's forward action.
func (it *item) stickiness() (bool, int32) {
	fc := it.actions[it.fwd].ForwardConfig
	if fc == nil || fc.TargetGroupStickinessConfig == nil {
		return false, 0
	}
	return aws.ToBool(fc.TargetGroupStickinessConfig.Enabled), aws.ToInt32(fc.TargetGroupStickinessConfig.DurationSeconds)
}
