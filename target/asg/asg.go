// Package asg is the ALB target whose colors are auto-scaling groups, one
// per color, each attached to its color's target group. Traffic is switched
// exactly as on target/alb (one ModifyListener per listener); this package
// adds the groups: their sizes in status, warm or cold, a deploy that puts a
// release on the off group (a new launch template version), scaling a cold
// color up before traffic goes to it, and scaling the old color down.
package asg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// Tags oops reads on groups, launch template versions and instances.
const (
	// TagColor marks an auto-scaling group as blue or green (asg-by-tag).
	TagColor = "oops:color"
	// TagCommit is put on every instance a deploy launches (through the
	// launch template version), so that oops hook fetch finds its release.
	TagCommit = "oops:commit"
)

// API is the part of the Auto Scaling client oops uses.
type API interface {
	DescribeAutoScalingGroups(context.Context, *autoscaling.DescribeAutoScalingGroupsInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	UpdateAutoScalingGroup(context.Context, *autoscaling.UpdateAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.UpdateAutoScalingGroupOutput, error)
	TerminateInstanceInAutoScalingGroup(context.Context, *autoscaling.TerminateInstanceInAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error)
}

// EC2 is the part of the EC2 client oops uses: launch template versions.
type EC2 interface {
	DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
	CreateLaunchTemplateVersion(context.Context, *ec2.CreateLaunchTemplateVersionInput, ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateVersionOutput, error)
}

var (
	_ API = (*autoscaling.Client)(nil)
	_ EC2 = (*ec2.Client)(nil)

	_ target.Target          = (*Target)(nil)
	_ target.Describer       = (*Target)(nil)
	_ target.RepairPlanner   = (*Target)(nil)
	_ target.Deployer        = (*Target)(nil)
	_ target.Scaler          = (*Target)(nil)
	_ target.InstallRecorder = (*Target)(nil)
	_ target.StepDescriber   = (*Target)(nil)
)

// Config names the groups and how they are sized.
type Config struct {
	// Names are blue-asg and green-asg; nil: the groups tagged oops:color.
	Names map[release.Color]string
	// OffCapacity is the size a deploy gives the off group (off-capacity);
	// 0: the live group's desired capacity.
	OffCapacity int
	// ScaleTimeout bounds the wait for a cold color scaled up by a
	// rollback (scale-timeout; default 10m).
	ScaleTimeout time.Duration
	// PollInterval is how often a wait re-reads the group (default 5s).
	PollInterval time.Duration
	// UserData is the user data of a launch template version a deploy
	// creates when the current one has none (default DefaultUserData).
	UserData string
	// Logf receives progress lines.
	Logf func(format string, args ...any)
}

// Target is an ALB (target/alb) whose colors are auto-scaling groups.
type Target struct {
	*alb.Target
	as  API
	ec2 EC2
	cfg Config

	mu sync.Mutex
	// last is the groups read with lastState, so that Plan and Probe given
	// that State cost no further call.
	last      map[release.Color]*group
	lastState *target.State
}

// New wraps the ALB target lb; it makes no API call.
func New(lb *alb.Target, as API, ec2 EC2, cfg Config) (*Target, error) {
	if cfg.Names != nil && (cfg.Names[release.Blue] == "" || cfg.Names[release.Green] == "" || cfg.Names[release.Blue] == cfg.Names[release.Green]) {
		return nil, fmt.Errorf("%w: blue-asg and green-asg must name two groups", target.ErrMisconfigured)
	}
	if cfg.ScaleTimeout <= 0 {
		cfg.ScaleTimeout = 10 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.UserData == "" {
		cfg.UserData = DefaultUserData
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return &Target{Target: lb, as: as, ec2: ec2, cfg: cfg}, nil
}

func (t *Target) String() string { return t.Target.String() }

// group is one color's auto-scaling group as read.
type group struct {
	name                  string
	desired, min, max     int
	ltID, ltName, version string   // the launch template the group launches from
	targetGroups          []string // the ARNs of the target groups it is attached to
	instances             []instance
}

type instance struct {
	id, lifecycle, health, version string
}

func (g *group) inService() int {
	n := 0
	for _, in := range g.instances {
		if in.lifecycle == string(astypes.LifecycleStateInService) {
			n++
		}
	}
	return n
}

// drifted counts g's InService instances on another launch template
// version than the one g names by number.
func (g *group) drifted() (int, string) {
	v := pinned(g.version)
	if v == "" {
		return 0, ""
	}
	n := 0
	for _, in := range g.instances {
		if in.lifecycle == string(astypes.LifecycleStateInService) && in.version != "" && in.version != v {
			n++
		}
	}
	return n, v
}

// read reads both colors' groups: one DescribeAutoScalingGroups call.
func (t *Target) read(ctx context.Context) (map[release.Color]*group, error) {
	in := &autoscaling.DescribeAutoScalingGroupsInput{}
	if t.cfg.Names != nil {
		in.AutoScalingGroupNames = []string{t.cfg.Names[release.Blue], t.cfg.Names[release.Green]}
	} else {
		in.Filters = []astypes.Filter{{Name: aws.String("tag-key"), Values: []string{TagColor}}}
	}
	groups := map[release.Color]*group{}
	for {
		out, err := t.as.DescribeAutoScalingGroups(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read auto-scaling groups: DescribeAutoScalingGroups: %w", err)
		}
		for _, g := range out.AutoScalingGroups {
			c, err := t.colorOf(g)
			if err != nil {
				return nil, err
			}
			if c == "" {
				continue
			}
			if groups[c] != nil {
				return nil, target.Hinted(fmt.Errorf("%w: auto-scaling groups %s and %s are both tagged %s=%s", target.ErrMisconfigured, groups[c].name, aws.ToString(g.AutoScalingGroupName), TagColor, c),
					`name the groups in .oopsrc: "blue-asg" and "green-asg"`)
			}
			groups[c] = parseGroup(g)
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		if groups[c] == nil {
			continue
		}
		// A group attached to the other color's target group (tags
		// swapped, names crossed) would have oops scale down, or replace
		// the instances of, the color that takes the traffic.
		other, err := t.Target.TargetGroupARN(ctx, c.Other())
		if err != nil {
			return nil, err
		}
		if slices.Contains(groups[c].targetGroups, other) {
			return nil, target.Hinted(fmt.Errorf("%w: auto-scaling group %s (%s) is attached to target group %s, which %s uses: oops would scale or replace %s's instances as %s's",
				target.ErrMisconfigured, groups[c].name, t.named(c), tgName(other), c.Other(), c.Other(), c),
				"each color's group must be attached to that color's target group: fix the oops:color tags (or blue-asg/green-asg in .oopsrc)")
		}
	}
	for _, c := range []release.Color{release.Blue, release.Green} {
		if groups[c] == nil {
			what := fmt.Sprintf("no auto-scaling group tagged %s=%s", TagColor, c)
			if t.cfg.Names != nil {
				what = fmt.Sprintf("auto-scaling group %s (%s-asg in .oopsrc) not found", t.cfg.Names[c], c)
			}
			return nil, fmt.Errorf("%w: %s", target.ErrMisconfigured, what)
		}
	}
	return groups, nil
}

// named says how c's group was chosen, for errors.
func (t *Target) named(c release.Color) string {
	if t.cfg.Names != nil {
		return string(c) + "-asg in .oopsrc"
	}
	return "tagged " + string(c)
}

// tgName is the name in a target group ARN (".../targetgroup/NAME/ID").
func tgName(arn string) string {
	parts := strings.Split(arn, "/")
	if len(parts) >= 3 {
		return parts[len(parts)-2]
	}
	return arn
}

func (t *Target) colorOf(g astypes.AutoScalingGroup) (release.Color, error) {
	name := aws.ToString(g.AutoScalingGroupName)
	if t.cfg.Names != nil {
		for c, n := range t.cfg.Names {
			if n == name {
				return c, nil
			}
		}
		return "", nil
	}
	for _, tg := range g.Tags {
		if aws.ToString(tg.Key) == TagColor {
			c, err := release.ParseColor(aws.ToString(tg.Value))
			if err != nil {
				return "", fmt.Errorf("%w: auto-scaling group %s is tagged %s=%s; use blue or green", target.ErrMisconfigured, name, TagColor, aws.ToString(tg.Value))
			}
			return c, nil
		}
	}
	return "", nil
}

func parseGroup(g astypes.AutoScalingGroup) *group {
	out := &group{
		name:         aws.ToString(g.AutoScalingGroupName),
		desired:      int(aws.ToInt32(g.DesiredCapacity)),
		min:          int(aws.ToInt32(g.MinSize)),
		max:          int(aws.ToInt32(g.MaxSize)),
		targetGroups: g.TargetGroupARNs,
	}
	if lt := g.LaunchTemplate; lt != nil {
		out.ltID, out.ltName, out.version = aws.ToString(lt.LaunchTemplateId), aws.ToString(lt.LaunchTemplateName), aws.ToString(lt.Version)
	}
	for _, in := range g.Instances {
		i := instance{id: aws.ToString(in.InstanceId), lifecycle: string(in.LifecycleState), health: aws.ToString(in.HealthStatus)}
		if in.LaunchTemplate != nil {
			i.version = aws.ToString(in.LaunchTemplate.Version)
		}
		out.instances = append(out.instances, i)
	}
	sort.Slice(out.instances, func(i, j int) bool { return out.instances[i].id < out.instances[j].id })
	return out
}

// need is how many InService instances color c needs to take all the
// traffic: what the other color has (desired), or, for the live color,
// its own desired capacity when larger; at least one.
func need(gs map[release.Color]*group, c, live release.Color) int {
	n := gs[c.Other()].desired
	if c == live {
		n = max(n, gs[c].desired)
	}
	return max(1, n)
}

// State is the ALB's state with each color's group: its size, and
// whether the off color is warm. Groups that cannot be read leave the
// ALB's state as it is, with a note: the switch then rests on the ALB's
// health gate alone, as on a plain ALB.
func (t *Target) State(ctx context.Context) (*target.State, error) {
	st, err := t.Target.State(ctx)
	if st == nil {
		return nil, err
	}
	t.annotate(ctx, st)
	return st, err
}

// Describe is State plus per-instance health.
func (t *Target) Describe(ctx context.Context) (*target.State, error) {
	st, err := t.Target.Describe(ctx)
	if st == nil {
		return nil, err
	}
	t.annotate(ctx, st)
	return st, err
}

func (t *Target) annotate(ctx context.Context, st *target.State) {
	gs, err := t.read(ctx)
	t.mu.Lock()
	t.last, t.lastState = gs, st
	t.mu.Unlock()
	if err != nil {
		st.Notes = append(st.Notes, target.Note{Name: "groups", Text: fmt.Sprintf("unreadable (%v): a rollback relies on the ALB health gate alone", err)})
		return
	}
	for _, cs := range []*target.ColorState{&st.Live, &st.Off} {
		g := gs[cs.Color]
		n := need(gs, cs.Color, st.Live.Color)
		cs.Group = &target.Group{Name: g.name, Desired: g.desired, Min: g.min, Max: g.max, InService: g.inService(), Need: n, Warm: g.inService() >= n}
	}
	st.Notes = append(st.Notes, target.Note{Name: "groups", Text: fmt.Sprintf("%s %s, %s %s", st.Live.Color, size(st.Live.Group), st.Off.Color, size(st.Off.Group))})
	for _, cs := range []*target.ColorState{&st.Live, &st.Off} {
		if n, v := gs[cs.Color].drifted(); n > 0 {
			st.Notes = append(st.Notes, target.Note{Name: "drift", Text: fmt.Sprintf("%s: %d InService instance(s) not on launch template version %s, which the group launches from: they may run another release than %s (a deploy that did not replace them)",
				cs.Color, n, v, release.Short(cs.Commit))})
		}
	}
	off := st.Off.Group
	if off.Warm {
		st.Notes = append(st.Notes, target.Note{Name: "rollback", Text: fmt.Sprintf("%s is warm: instant (one ModifyListener per listener)", st.Off.Color)})
	} else {
		st.Notes = append(st.Notes, target.Note{Name: "rollback", Text: fmt.Sprintf("%s is cold (%d of %d InService): a rollback scales %s to %d first and waits until they are healthy (up to %s)",
			st.Off.Color, off.InService, off.Need, off.Name, off.Need, t.cfg.ScaleTimeout)})
	}
}

func size(g *target.Group) string {
	return fmt.Sprintf("%s %d/%d InService (min %d, max %d)", g.Name, g.InService, g.Desired, g.Min, g.Max)
}

// groupsFor returns the groups read with st, or reads again.
func (t *Target) groupsFor(ctx context.Context, st *target.State) (map[release.Color]*group, error) {
	t.mu.Lock()
	gs, last := t.last, t.lastState
	t.mu.Unlock()
	if gs == nil || last != st || st == nil {
		var err error
		if gs, err = t.read(ctx); err != nil {
			return nil, err
		}
	}
	return gs, nil
}

// Plan is the ALB's plan; a switch to a cold color scales it up first and
// waits until enough of its instances are InService and healthy in its
// target group: never a switch to nothing.
func (t *Target) Plan(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
	p, err := t.Target.Plan(ctx, st, to, weight)
	if err != nil || weight == 0 || target.InstalledBefore(ctx) == to {
		return p, err
	}
	gs, err := t.groupsFor(ctx, st)
	if err != nil {
		t.cfg.Logf("warning: %v: switching on the ALB health gate alone", err)
		return p, nil
	}
	g, need := gs[to], need(gs, to, st.Live.Color)
	if g.inService() >= need {
		return p, nil
	}
	cs := st.Off
	if st.Live.Color == to {
		cs = st.Live
	}
	if err := t.checkDrift(ctx, g, to, cs.Commit); err != nil {
		return nil, err
	}
	timeout := target.ScaleTimeout(ctx, t.cfg.ScaleTimeout)
	step := fmt.Sprintf("UpdateAutoScalingGroup %s: desired capacity %d -> %d (%s is cold: %d InService), then wait up to %s until %d instances are InService and healthy in its target group",
		g.name, g.desired, max(g.desired, need), to, g.inService(), timeout, need)
	steps := append([]string{step}, p.Steps...)
	return target.NewPlan(p.From, p.To, p.Weight, steps, func(ctx context.Context) error {
		t.cfg.Logf("%s is cold: scaling %s to %d before switching", to, g.name, need)
		if err := t.resize(ctx, g, max(g.desired, need), min(g.min, need), max(g.max, need), nil); err != nil {
			return err
		}
		// Only instances of the version checked above count: one left on
		// another version (not replaced) would serve another commit.
		if err := t.wait(ctx, to, g.name, pinned(g.version), need, timeout, t.cfg.Logf); err != nil {
			return fmt.Errorf("scale up %s: %w; traffic was not switched", to, err)
		}
		return t.Target.Apply(ctx, p)
	}), nil
}

// checkDrift refuses to scale up color c's group when the launch template
// version it launches from carries another commit than the one recorded
// for c (the group pointed at another version by hand, or by Terraform):
// its new instances would serve that commit while history says c's.
func (t *Target) checkDrift(ctx context.Context, g *group, c release.Color, recorded string) error {
	if recorded == "" || g.ltID == "" && g.ltName == "" {
		return nil
	}
	v, err := t.version(ctx, g)
	if err != nil {
		return err
	}
	got := instanceTag(v.LaunchTemplateData, TagCommit)
	if got == "" || got == recorded {
		return nil
	}
	return target.Hinted(fmt.Errorf("%w: %s launches from launch template %s version %s, which carries %s, but %s is recorded as %s: scaled up, it would serve another release; nothing was scaled or switched",
		target.ErrMisconfigured, g.name, g.template(), strconv.FormatInt(aws.ToInt64(v.VersionNumber), 10), got, c, recorded),
		"point the group back at the version that carries "+recorded+", or deploy the release you want there: oops rollback --to REV")
}

// pinned is the launch template version instances must be on, when the
// group names one by number ("": $Latest or $Default, not checked).
func pinned(version string) string {
	if _, err := strconv.ParseInt(version, 10, 64); err != nil {
		return ""
	}
	return version
}

// version reads the launch template version g launches from.
func (t *Target) version(ctx context.Context, g *group) (ec2types.LaunchTemplateVersion, error) {
	src := g.version
	if src == "" {
		src = "$Default"
	}
	din := &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{src}}
	if g.ltID != "" {
		din.LaunchTemplateId = aws.String(g.ltID)
	} else {
		din.LaunchTemplateName = aws.String(g.ltName)
	}
	out, err := t.ec2.DescribeLaunchTemplateVersions(ctx, din)
	if err != nil {
		return ec2types.LaunchTemplateVersion{}, fmt.Errorf("read launch template %s: DescribeLaunchTemplateVersions: %w", g.template(), err)
	}
	if len(out.LaunchTemplateVersions) == 0 || out.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return ec2types.LaunchTemplateVersion{}, fmt.Errorf("%w: launch template %s has no version %s", target.ErrMisconfigured, g.template(), src)
	}
	return out.LaunchTemplateVersions[0], nil
}

// instanceTag is the value of tag key on the instances d launches.
func instanceTag(d *ec2types.ResponseLaunchTemplateData, key string) string {
	if d == nil {
		return ""
	}
	for _, ts := range d.TagSpecifications {
		if ts.ResourceType != ec2types.ResourceTypeInstance {
			continue
		}
		for _, tg := range ts.Tags {
			if aws.ToString(tg.Key) == key {
				return aws.ToString(tg.Value)
			}
		}
	}
	return ""
}

// Apply runs p (see Plan): groups are read again afterwards.
func (t *Target) Apply(ctx context.Context, p *target.Plan) error {
	t.forget()
	defer t.forget()
	return t.Target.Apply(ctx, p)
}

// Probe checks color c on the ALB; a cold color passes here, because Plan
// scales it up and checks its health before the switch (Apply).
func (t *Target) Probe(ctx context.Context, c release.Color) error {
	t.mu.Lock()
	gs, st := t.last, t.lastState
	t.mu.Unlock()
	if gs != nil && st != nil {
		if g := gs[c]; g != nil && g.inService() < need(gs, c, st.Live.Color) {
			t.cfg.Logf("%s is cold (%d InService): its health is checked once it is scaled up, before the switch", c, g.inService())
			return nil
		}
	}
	return t.Target.Probe(ctx, c)
}

func (t *Target) forget() {
	t.mu.Lock()
	t.last, t.lastState = nil, nil
	t.mu.Unlock()
}

// PlanScale describes setting color c's group to desired instances, its
// minimum lowered to match (oops downscale). The live color is refused.
func (t *Target) PlanScale(ctx context.Context, st *target.State, c release.Color, desired int) (*target.Plan, error) {
	if st != nil && st.Live.Color == c && st.Live.Weight > 0 {
		return nil, fmt.Errorf("scale %s: it takes traffic; only the off color is scaled down", c)
	}
	gs, err := t.groupsFor(ctx, st)
	if err != nil {
		return nil, err
	}
	g := gs[c]
	if g.desired == desired && g.min <= desired {
		return nil, nil
	}
	mn := min(g.min, desired)
	step := fmt.Sprintf("UpdateAutoScalingGroup %s: desired capacity %d -> %d, min size %d -> %d", g.name, g.desired, desired, g.min, mn)
	live := c.Other()
	if st != nil {
		live = st.Live.Color
	}
	return target.NewPlan(live, live, 100, []string{step}, func(ctx context.Context) error {
		return t.resize(ctx, g, desired, mn, g.max, nil)
	}), nil
}

// resize sets g's size (and, with lt, its launch template version).
func (t *Target) resize(ctx context.Context, g *group, desired, mn, mx int, lt *astypes.LaunchTemplateSpecification, opts ...func(*autoscaling.Options)) error {
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	in := &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(g.name),
		DesiredCapacity:      aws.Int32(int32(desired)),
		MinSize:              aws.Int32(int32(mn)),
		MaxSize:              aws.Int32(int32(max(mx, desired))),
		LaunchTemplate:       lt,
	}
	if _, err := t.as.UpdateAutoScalingGroup(ctx, in, opts...); err != nil {
		return fmt.Errorf("scale %s to %d: UpdateAutoScalingGroup: %w", g.name, desired, err)
	}
	t.forget()
	return nil
}

// wait polls until want instances of group name (on launch template
// version, when set, and no InService instance on another) are InService
// and healthy in color c's target group, saying each instance's progress.
func (t *Target) wait(ctx context.Context, c release.Color, name, version string, want int, timeout time.Duration, progress func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	// The reads share the deadline: a call AWS does not answer must not
	// hold a rollback past its timeout.
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	seen := map[string]string{}
	for {
		ready, why, err := t.ready(wctx, c, name, version, want, seen, progress)
		if err == nil && ready {
			return nil
		}
		if err != nil {
			why = err.Error()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for %s: %w (%s)", name, ctx.Err(), why)
		}
		if wctx.Err() != nil || !time.Now().Add(t.cfg.PollInterval).Before(deadline) {
			return fmt.Errorf("%w: %s after %s: %s", target.ErrUnhealthy, name, timeout, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (%s)", name, ctx.Err(), why)
		case <-time.After(t.cfg.PollInterval):
		}
	}
}

// ready is one look at the group and its target group.
func (t *Target) ready(ctx context.Context, c release.Color, name, version string, want int, seen map[string]string, progress func(string, ...any)) (bool, string, error) {
	out, err := t.as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return false, "", fmt.Errorf("read %s: DescribeAutoScalingGroups: %w", name, err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return false, "", fmt.Errorf("%w: auto-scaling group %s not found", target.ErrMisconfigured, name)
	}
	g := parseGroup(out.AutoScalingGroups[0])
	health, err := t.Target.TargetHealth(ctx, c)
	if err != nil {
		return false, "", err
	}
	good, old, unused := 0, 0, 0
	for _, in := range g.instances {
		inService := in.lifecycle == string(astypes.LifecycleStateInService)
		if version != "" && in.version != version {
			if inService || in.lifecycle == string(astypes.LifecycleStatePending) {
				old++
			}
			continue
		}
		h := health[in.id]
		if h == "" {
			h = "not registered"
		}
		line := fmt.Sprintf("%s %s, %s in its target group", in.id, in.lifecycle, h)
		if seen[in.id] != line {
			seen[in.id] = line
			progress("  %s", line)
		}
		if inService && h == "healthy" {
			good++
		}
	}
	for _, h := range health {
		if h == "unused" { // the whole target group is, when one target is
			unused++
		}
	}
	why := fmt.Sprintf("%d of %d instances InService and healthy", good, want)
	if old > 0 {
		why += fmt.Sprintf(", %d still on an older launch template version", old)
	}
	if unused > 0 {
		why += "; targets are unused (not health-checked): if no listener forwards to the target group, list it in the forward action at weight 0"
	}
	return good >= want && old == 0, why, nil
}

// Deploy puts req.Release on req.Color's group: a new launch template
// version that carries the commit (tag oops:commit on the instances it
// launches; user data that runs oops hook fetch), the group pointed at it
// and sized like the live group (or off-capacity), the instances of older
// versions replaced; it waits until every instance is InService and
// healthy in the color's target group (req.Timeout).
func (t *Target) Deploy(ctx context.Context, req target.DeployRequest) (*target.Deployment, error) {
	progress := req.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	// Until the group is pointed at the new version nothing on the color
	// changed: a failure before then is target.ErrNotStarted, and the
	// color keeps its record (and stays what a rollback goes back to).
	gs, err := t.read(ctx)
	if err != nil {
		return nil, target.NotStarted(err)
	}
	g, live := gs[req.Color], gs[req.Color.Other()]
	if g.ltID == "" && g.ltName == "" {
		return nil, target.NotStarted(target.Hinted(fmt.Errorf("%w: auto-scaling group %s launches from no launch template", target.ErrMisconfigured, g.name),
			"give the group a launch template (a launch configuration or mixed instances policy cannot carry the commit)"))
	}
	want := t.cfg.OffCapacity
	if want == 0 {
		want = max(1, live.desired)
	}
	version, err := t.newVersion(ctx, g, req)
	if err != nil {
		return nil, err // ErrNotStarted when the group launches as before
	}
	progress("launch template %s version %s carries %s; scaling %s to %d", g.template(), version, req.Release.Short(), g.name, want)
	lt := &astypes.LaunchTemplateSpecification{Version: aws.String(version)}
	if g.ltID != "" {
		lt.LaunchTemplateId = aws.String(g.ltID)
	} else {
		lt.LaunchTemplateName = aws.String(g.ltName)
	}
	var att target.Attempts
	if err := t.resize(ctx, g, want, min(g.min, want), max(g.max, want), lt, func(o *autoscaling.Options) { o.APIOptions = append(o.APIOptions, att.Count) }); err != nil {
		if target.Refused(err, &att) {
			// AWS answered no: the group is as it was. (A call that got
			// no answer, or was retried, may have been applied.)
			err = target.NotStarted(err)
		}
		return nil, err
	}
	// Instances of older versions are replaced: the group launches new
	// ones on the new version (ShouldDecrementDesiredCapacity false).
	for _, in := range g.instances {
		if in.version == version || in.lifecycle != string(astypes.LifecycleStateInService) && in.lifecycle != string(astypes.LifecycleStatePending) {
			continue
		}
		if err := target.CheckFence(ctx); err != nil {
			return nil, err
		}
		if _, err := t.as.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(in.id), ShouldDecrementDesiredCapacity: aws.Bool(false),
		}); err != nil {
			return nil, fmt.Errorf("replace %s in %s: TerminateInstanceInAutoScalingGroup: %w", in.id, g.name, err)
		}
		progress("  %s replaced (launch template version %s)", in.id, in.version)
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = t.cfg.ScaleTimeout
	}
	progress("waiting up to %s for %d instances of %s on version %s to be InService and healthy", timeout, want, g.name, version)
	id := g.template() + " v" + version
	if err := t.wait(ctx, req.Color, g.name, version, want, timeout, progress); err != nil {
		if ctx.Err() != nil {
			return &target.Deployment{ID: id, Status: "Stopped"}, err
		}
		// A failed deployment (exit 5), not a refused switch: %v.
		return &target.Deployment{ID: id, Status: "Failed"}, fmt.Errorf("%w: %v", target.ErrDeployFailed, err)
	}
	return &target.Deployment{ID: id, Status: "Succeeded"}, nil
}

// DeployStep is Deploy's line for deploy --dry-run (no call made).
func (t *Target) DeployStep(req target.DeployRequest) string {
	size := "sized like the live group (its desired capacity)"
	if t.cfg.OffCapacity > 0 {
		size = fmt.Sprintf("sized %d (off-capacity)", t.cfg.OffCapacity)
	}
	name := "the auto-scaling group of " + string(req.Color)
	if n := t.cfg.Names[req.Color]; n != "" {
		name = n
	}
	return fmt.Sprintf("CreateLaunchTemplateVersion tagging instances %s=%s (user data runs %s); UpdateAutoScalingGroup %s onto it, %s; replace its older instances and wait until every new one is InService and healthy in its target group",
		TagCommit, req.Release.Commit, FetchCommand, name, size)
}

func (g *group) template() string {
	if g.ltName != "" {
		return g.ltName
	}
	return g.ltID
}

// newVersion creates the launch template version for req: the group's
// current version with the commit tagged on its instances, instance tags
// readable through the metadata service, and user data that fetches the
// release (the current user data when it already runs oops hook fetch).
// Its errors are target.ErrNotStarted when the group launches as before:
// any failure before CreateLaunchTemplateVersion; a failed
// CreateLaunchTemplateVersion unless the group launches from $Latest,
// which launches a version the call may have created (one AWS refused
// was not).
func (t *Target) newVersion(ctx context.Context, g *group, req target.DeployRequest) (string, error) {
	cur, err := t.version(ctx, g)
	if err != nil {
		return "", target.NotStarted(err)
	}
	data, err := versionData(cur.LaunchTemplateData, t.cfg.UserData, req.Release.Commit, req.Color)
	if err != nil {
		return "", target.NotStarted(target.Hinted(fmt.Errorf("%w: launch template %s: %w", target.ErrMisconfigured, g.template(), err), "see \"Auto-scaling groups\" in the README for the user data"))
	}
	if err := target.CheckFence(ctx); err != nil {
		return "", target.NotStarted(err)
	}
	var att target.Attempts
	created := func(err error) error {
		if g.version == "$Latest" && !target.Refused(err, &att) {
			return err // the group may launch it already
		}
		return target.NotStarted(err) // a version nothing launches from
	}
	cin := &ec2.CreateLaunchTemplateVersionInput{
		SourceVersion:      aws.String(strconv.FormatInt(aws.ToInt64(cur.VersionNumber), 10)),
		VersionDescription: aws.String(truncate(req.Description, 255)),
		LaunchTemplateData: data,
	}
	if g.ltID != "" {
		cin.LaunchTemplateId = aws.String(g.ltID)
	} else {
		cin.LaunchTemplateName = aws.String(g.ltName)
	}
	made, err := t.ec2.CreateLaunchTemplateVersion(ctx, cin, func(o *ec2.Options) { o.APIOptions = append(o.APIOptions, att.Count) })
	if err != nil {
		return "", created(fmt.Errorf("create launch template version for %s: CreateLaunchTemplateVersion: %w", req.Release.Short(), err))
	}
	if made.LaunchTemplateVersion == nil || made.LaunchTemplateVersion.VersionNumber == nil {
		return "", created(errors.New("create launch template version: no version number in the answer"))
	}
	return strconv.FormatInt(*made.LaunchTemplateVersion.VersionNumber, 10), nil
}

// truncate cuts s to at most n bytes, not inside a character: EC2 takes
// only valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
