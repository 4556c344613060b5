package elb

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// observation is everything one read of the ELB (DescribeLoadBalancers and
// DescribeTags, made concurrently) says, and what oops concludes from it.
type observation struct {
	name      string
	ports     map[release.Color]int32
	commits   map[release.Color]string
	listeners []listener
	hc        *healthCheck
	instances []string
	// backends are the backend-server policies by instance port.
	backends map[int32][]string

	record       []listener // the oops:listeners tag; nil when absent or unreadable
	recordChunks int        // how many oops:listeners* tags exist
	intent       *intentTag // the oops:switch tag

	// Derived by classify.
	onColor map[release.Color][]listener
	// defs are the listeners every color listener should be, as they are
	// now (missing ones from the record).
	defs    []listener
	missing []listener // recorded, but no listener on that port
	drift   []drift    // present, but with other policies than recorded
	hcColor release.Color
	// traffic is the color every present color listener points at ("" when
	// none does, or they are split).
	traffic release.Color
	split   bool
	// complete is the live color when the ELB is consistent ("" otherwise).
	complete release.Color
	pending  *target.Intent
	// repairTo is where oops repair goes by default ("" when nothing says).
	repairTo release.Color
	problem  error

	// installing is the oops:<color>-installing tag: a commit put on the
	// color that has not passed its health check yet.
	installing map[release.Color]string
}

// drift is a listener whose policies differ from the record: changed on
// purpose, or a switch interrupted before it re-attached them.
type drift struct {
	port               int32
	current, recorded  []string
	recordedDefinition listener
}

// intentTag is the explicit record of a switch in progress, used when the
// health check is not on a color port and so cannot record it.
type intentTag struct {
	to      release.Color
	started time.Time
	by      string
}

func (it *intentTag) value() string {
	v := string(it.to) + " " + it.started.UTC().Format(time.RFC3339)
	if it.by != "" {
		// Who is free text (DOMAIN\user, long host names): keep it a
		// value AWS accepts, or the switch's first call would fail.
		by := strings.Map(func(r rune) rune {
			if _, bad := badTagRune(string(r)); bad {
				return '_'
			}
			return r
		}, it.by)
		v += " " + by
	}
	if len(v) > maxTagValue {
		v = strings.ToValidUTF8(v[:maxTagValue], "")
	}
	return v
}

func parseIntent(v string) *intentTag {
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil
	}
	c, err := release.ParseColor(f[0])
	if err != nil {
		return nil
	}
	it := &intentTag{to: c}
	if len(f) > 1 {
		it.started, _ = time.Parse(time.RFC3339, f[1])
	}
	if len(f) > 2 {
		it.by = strings.Join(f[2:], " ")
	}
	return it
}

// observe reads the ELB: two calls, in parallel.
func (t *Target) observe(ctx context.Context) (*observation, error) {
	var (
		wg    sync.WaitGroup
		lbOut *elbsdk.DescribeLoadBalancersOutput
		tgOut *elbsdk.DescribeTagsOutput
		lbErr error
		tgErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		lbOut, lbErr = t.api.DescribeLoadBalancers(ctx, &elbsdk.DescribeLoadBalancersInput{LoadBalancerNames: []string{t.name}})
	}()
	go func() {
		defer wg.Done()
		tgOut, tgErr = t.api.DescribeTags(ctx, &elbsdk.DescribeTagsInput{LoadBalancerNames: []string{t.name}})
	}()
	wg.Wait()
	if lbErr != nil {
		return nil, t.explain("DescribeLoadBalancers", lbErr)
	}
	if tgErr != nil {
		return nil, t.explain("DescribeTags", tgErr)
	}
	if len(lbOut.LoadBalancerDescriptions) == 0 {
		return nil, t.notFound()
	}
	lb := lbOut.LoadBalancerDescriptions[0]
	tags := map[string]string{}
	for _, d := range tgOut.TagDescriptions {
		for _, tg := range d.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
	}
	o := &observation{name: t.name, commits: map[release.Color]string{}, installing: map[release.Color]string{}}
	for _, d := range lb.ListenerDescriptions {
		o.listeners = append(o.listeners, fromSDK(d))
	}
	o.listeners = sortedByPort(o.listeners)
	for _, in := range lb.Instances {
		o.instances = append(o.instances, aws.ToString(in.InstanceId))
	}
	o.backends = map[int32][]string{}
	for _, b := range lb.BackendServerDescriptions {
		if len(b.PolicyNames) > 0 {
			o.backends[aws.ToInt32(b.InstancePort)] = b.PolicyNames
		}
	}
	var err error
	if o.hc, err = parseHealthCheck(lb.HealthCheck); err != nil {
		t.logf("classic ELB %s: %v: oops records switches in the tag %s instead", t.name, err, tagIntent)
		o.hc = nil
	}
	if o.ports, err = t.colorPorts(tags); err != nil {
		t.remember(nil)
		return nil, err
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		o.commits[c] = tags[commitTag(string(c))]
		o.installing[c] = tags[installingTag(string(c))]
	}
	var chunks []string
	for n := 0; ; n++ {
		v, ok := tags[listenersChunkKey(n)]
		if !ok {
			break
		}
		o.recordChunks = n + 1
		chunks = append(chunks, v)
	}
	if o.recordChunks > 0 {
		if o.record, err = decodeRecord(strings.Join(chunks, " ")); err != nil {
			t.logf("classic ELB %s: tag %s is unreadable (%v): ignoring it; the next switch rewrites it", t.name, tagListeners, err)
			o.record = nil
		}
	}
	if v, ok := tags[tagIntent]; ok {
		o.intent = parseIntent(v)
	}
	o.classify()
	t.remember(o)
	return o, nil
}

// colorPorts reads the blue and green tags (the original tool's contract).
func (t *Target) colorPorts(tags map[string]string) (map[release.Color]int32, error) {
	b, bok := tags[tagBlue]
	g, gok := tags[tagGreen]
	if !bok && !gok && len(t.opts.Ports) == 2 {
		return map[release.Color]int32{release.Blue: int32(t.opts.Ports[release.Blue]), release.Green: int32(t.opts.Ports[release.Green])}, nil
	}
	fix := fmt.Sprintf("tag the ELB with each color's instance port, e.g.: aws elb add-tags --load-balancer-names %s --tags Key=blue,Value=8080 Key=green,Value=8081", t.name)
	var missing []string
	if !bok {
		missing = append(missing, tagBlue)
	}
	if !gok {
		missing = append(missing, tagGreen)
	}
	if len(missing) > 0 {
		return nil, target.Hinted(fmt.Errorf("%w: classic ELB %s has no tag %s (it has: %s)", target.ErrMisconfigured, t.name, strings.Join(missing, " or "), tagList(tags)), fix)
	}
	out := map[release.Color]int32{}
	for c, v := range map[release.Color]string{release.Blue: b, release.Green: g} {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || p < 1 || p > 65535 {
			return nil, target.Hinted(fmt.Errorf("%w: classic ELB %s: tag %s=%q is not a port number", target.ErrMisconfigured, t.name, c, v), fix)
		}
		out[c] = int32(p)
	}
	if out[release.Blue] == out[release.Green] {
		return nil, target.Hinted(fmt.Errorf("%w: classic ELB %s: tags blue and green are both %d: each color needs its own instance port", target.ErrMisconfigured, t.name, out[release.Blue]), fix)
	}
	return out, nil
}

func tagList(tags map[string]string) string {
	if len(tags) == 0 {
		return "no tags"
	}
	var ks []string
	for k, v := range tags {
		if strings.HasPrefix(k, tagListeners) {
			continue
		}
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

func (o *observation) colorOf(port int32) release.Color {
	for c, p := range o.ports {
		if p == port {
			return c
		}
	}
	return ""
}

// classify decides what state the ELB is in. Every rule is in the package
// doc; the short version: listeners say where traffic goes, the health
// check (or the oops:switch tag) says where a switch was heading, and the
// oops:listeners tag says which listeners must exist.
func (o *observation) classify() {
	o.onColor = map[release.Color][]listener{}
	present := map[int32]listener{}
	for _, l := range o.listeners {
		present[l.Port] = l
		if c := o.colorOf(l.InstancePort); c != "" {
			o.onColor[c] = append(o.onColor[c], l)
		}
	}
	recorded := map[int32]listener{}
	for _, r := range o.record {
		recorded[r.Port] = r
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		for _, l := range o.onColor[c] {
			d := l.def()
			o.defs = append(o.defs, d)
			if r, ok := recorded[l.Port]; ok && r.sameDef(d) && !slices.Equal(r.Policies, d.Policies) {
				o.drift = append(o.drift, drift{port: l.Port, current: d.Policies, recorded: r.Policies, recordedDefinition: r})
			}
		}
	}
	for _, r := range o.record {
		if _, ok := present[r.Port]; !ok {
			o.defs = append(o.defs, r)
			o.missing = append(o.missing, r)
		}
	}
	o.defs = sortedByPort(o.defs)
	if o.hc != nil {
		o.hcColor = o.colorOf(o.hc.Port)
	}
	nb, ng := len(o.onColor[release.Blue]), len(o.onColor[release.Green])
	switch {
	case nb > 0 && ng > 0:
		o.split = true
	case nb > 0:
		o.traffic = release.Blue
	case ng > 0:
		o.traffic = release.Green
	}
	intended := o.hcColor
	if o.intent != nil {
		intended = o.intent.to
	}
	pending := func(from, to release.Color) {
		o.pending = &target.Intent{From: from, To: to}
		if o.intent != nil {
			o.pending.Started, o.pending.By = o.intent.started, o.intent.by
		}
	}
	switch {
	case o.split:
		o.repairTo = intended
		if intended != "" {
			pending(intended.Other(), intended)
		}
		o.problem = o.splitError(intended)
	case o.traffic == "" && len(o.missing) > 0:
		o.repairTo = intended
		if intended != "" {
			pending(intended.Other(), intended)
		}
		o.problem = o.missingError(intended)
	case o.traffic == "":
		o.problem = o.neitherError()
	case len(o.missing) > 0:
		o.repairTo = o.traffic
		if intended != "" {
			o.repairTo = intended
			if intended != o.traffic || o.intent != nil {
				pending(o.traffic, intended)
			}
		}
		o.problem = o.missingError(o.repairTo)
	case intended != o.traffic && intended != "":
		// Listeners untouched: the switch stopped before deleting any.
		// Repair undoes it (traffic never moved); rollback finishes it.
		o.repairTo = o.traffic
		pending(o.traffic, intended)
		o.problem = o.interruptedError()
	case o.intent != nil:
		// Listeners moved, the tag was not cleared: the switch may not
		// have re-attached listener policies yet.
		o.repairTo = o.traffic
		pending(o.traffic.Other(), o.traffic)
		o.problem = o.unclearedError()
	default:
		o.complete = o.traffic
	}
}

func (o *observation) colorPort(c release.Color) string {
	return fmt.Sprintf("%s (port %d)", c, o.ports[c])
}

func (o *observation) listenerList(ls []listener) string {
	var parts []string
	for _, l := range sortedByPort(ls) {
		s := fmt.Sprintf("%d -> %d", l.Port, l.InstancePort)
		if c := o.colorOf(l.InstancePort); c != "" {
			s += " (" + string(c) + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (o *observation) marker() string {
	if o.hcColor != "" && (o.intent == nil || o.intent.to == o.hcColor) {
		return fmt.Sprintf("the health check points at %s", o.colorPort(o.hcColor))
	}
	if o.intent != nil {
		return fmt.Sprintf("tag %s says a switch to %s started", tagIntent, o.intent.to)
	}
	return "neither the health check nor a tag " + tagIntent + " says which color should be live"
}

func (o *observation) splitError(intended release.Color) error {
	err := fmt.Errorf("%w: classic ELB %s: listeners are split across both colors (tags blue=%d, green=%d): %s; %s",
		target.ErrInconsistent, o.name, o.ports[release.Blue], o.ports[release.Green], o.listenerList(o.listeners), o.marker())
	if intended != "" {
		return target.Hinted(err, fmt.Sprintf("run `oops repair` to point every listener at %s, or `oops repair --to %s`", intended, intended.Other()))
	}
	return target.Hinted(err, "run `oops repair --to blue` or `oops repair --to green` to point every listener at one color")
}

func (o *observation) missingError(to release.Color) error {
	what := "are missing"
	if len(o.missing) == 1 {
		what = "is missing"
	}
	err := fmt.Errorf("%w: classic ELB %s: listener %s (recorded in tag %s) %s, so the ELB takes no traffic there; present: %s; %s",
		target.ErrInconsistent, o.name, ports(o.missing), tagListeners, what, o.listenerList(o.listeners), o.marker())
	if to == "" {
		return target.Hinted(err, "run `oops repair --to blue` or `oops repair --to green` to recreate them on that color")
	}
	hint := fmt.Sprintf("run `oops repair` now to recreate them on %s", o.colorPort(to))
	if o.pending != nil {
		hint += " (or `oops rollback`, which finishes the interrupted switch)"
	}
	return target.Hinted(err, hint+fmt.Sprintf("; if they were deleted on purpose, remove the tag: aws elb remove-tags --load-balancer-names %s --tags Key=%s", o.name, tagListeners))
}

func (o *observation) neitherError() error {
	err := fmt.Errorf("%w: classic ELB %s: no listener points at blue (port %d) or green (port %d), the ports in its tags blue and green; listeners: %s",
		target.ErrMisconfigured, o.name, o.ports[release.Blue], o.ports[release.Green], o.listenerList(o.listeners))
	return target.Hinted(err, fmt.Sprintf("point the listeners at the live color's instance port, or fix the tags: aws elb add-tags --load-balancer-names %s --tags Key=blue,Value=PORT Key=green,Value=PORT", o.name))
}

func (o *observation) interruptedError() error {
	err := fmt.Errorf("%w: classic ELB %s: interrupted switch %s -> %s: %s while listeners %s still point at %s",
		target.ErrInconsistent, o.name, o.traffic, o.pending.To, o.marker(), ports(o.onColor[o.traffic]), o.colorPort(o.traffic))
	return target.Hinted(err, fmt.Sprintf("run `oops repair` to undo it (%s stays live), or `oops rollback` to finish it (%s goes live)", o.traffic, o.pending.To))
}

func (o *observation) unclearedError() error {
	if len(o.drift) > 0 {
		return o.policiesNotBackError()
	}
	err := fmt.Errorf("%w: classic ELB %s: interrupted switch to %s: listeners point at %s but the tag %s was not cleared (listener policies may not be re-attached)",
		target.ErrInconsistent, o.name, o.traffic, o.colorPort(o.traffic), tagIntent)
	return target.Hinted(err, "run `oops repair` to finish it")
}

// state turns an observation into the generic State.
func (o *observation) state() *target.State {
	live := o.traffic
	if live == "" {
		live = release.Blue
		if o.pending != nil {
			live = o.pending.To
		}
	}
	cs := func(c release.Color) target.ColorState {
		s := target.ColorState{Color: c, Port: int(o.ports[c]), Commit: o.commits[c]}
		if v := o.installing[c]; v != "" {
			s.Commit, s.Installing = v, true
		}
		if s.Commit == "" {
			s.Commit = target.UnknownCommit
		}
		if c == o.traffic && !o.split {
			s.Weight = 100
		}
		return s
	}
	st := &target.State{Kind: "elb", Name: o.name, Live: cs(live), Off: cs(live.Other()), Pending: o.pending}
	if o.hc != nil {
		// The ELB's own notation, which hooks parse for the path.
		st.HealthCheck = o.hc.target(o.hc.Port)
	}
	for _, l := range o.listeners {
		s := l.String()
		if c := o.colorOf(l.InstancePort); c != "" {
			s += " (" + string(c) + ")"
		}
		st.Listeners = append(st.Listeners, s)
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		if ps := o.backends[o.ports[c]]; len(ps) > 0 {
			st.Listeners = append(st.Listeners, fmt.Sprintf("backend policies on %s: %s", o.colorPort(c), strings.Join(ps, ", ")))
		}
	}
	return st
}

// driftWarning explains listener policies that differ from the record.
func (o *observation) driftWarning() string {
	if len(o.drift) == 0 {
		return ""
	}
	var parts []string
	for _, d := range o.drift {
		parts = append(parts, fmt.Sprintf("listener %d has policies [%s], the tag %s recorded [%s]",
			d.port, strings.Join(d.current, " "), tagListeners, strings.Join(d.recorded, " ")))
	}
	return fmt.Sprintf("classic ELB %s: %s. If a switch was interrupted, `oops repair` re-attaches the recorded ones; if they were changed on purpose, the next switch records them",
		o.name, strings.Join(parts, "; "))
}

// notFound is the error for an ELB that does not exist.
func (t *Target) notFound() error {
	return &target.AWSError{Msg: fmt.Sprintf("classic ELB %s not found%s: check elb-name in .oopsrc and the region (--region, AWS_REGION)", t.name, t.inRegion()),
		Err: &smithy.GenericAPIError{Code: "LoadBalancerNotFound", Message: "no load balancer named " + t.name}}
}
