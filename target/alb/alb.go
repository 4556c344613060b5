// Package alb switches traffic on an Application Load Balancer, where the two
// colors are target groups and a switch is one ModifyListener (or ModifyRule)
// per listener or color rule: each call is atomic, so traffic always has a
// target group to go to. Canaries are weighted forward actions.
package alb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// Tags oops reads and writes on the colors' target groups.
const (
	// TagColor marks a target group as the blue or the green color.
	TagColor = "oops:color"
	// TagCommit records the commit a color runs (SetCommit).
	TagCommit = "oops:commit"
	// TagCanaryBase records, on both target groups, the color that had all
	// the traffic when the current weighted split began: weights alone
	// cannot say which way "back" is once a canary passes 50%.
	TagCanaryBase = "oops:canary-base"
	// TagStickiness records, on both target groups, the target-group
	// stickiness duration (seconds) a full switch turned off: stickiness
	// takes precedence over weight, so it would keep clients on the color
	// switched away from. The next canary puts it back.
	TagStickiness = "oops:stickiness"
)

// API is the part of the ELBv2 client oops uses.
type API interface {
	DescribeLoadBalancers(context.Context, *elbv2.DescribeLoadBalancersInput, ...func(*elbv2.Options)) (*elbv2.DescribeLoadBalancersOutput, error)
	DescribeListeners(context.Context, *elbv2.DescribeListenersInput, ...func(*elbv2.Options)) (*elbv2.DescribeListenersOutput, error)
	DescribeRules(context.Context, *elbv2.DescribeRulesInput, ...func(*elbv2.Options)) (*elbv2.DescribeRulesOutput, error)
	DescribeTargetGroups(context.Context, *elbv2.DescribeTargetGroupsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTags(context.Context, *elbv2.DescribeTagsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTagsOutput, error)
	DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
	ModifyListener(context.Context, *elbv2.ModifyListenerInput, ...func(*elbv2.Options)) (*elbv2.ModifyListenerOutput, error)
	ModifyRule(context.Context, *elbv2.ModifyRuleInput, ...func(*elbv2.Options)) (*elbv2.ModifyRuleOutput, error)
	AddTags(context.Context, *elbv2.AddTagsInput, ...func(*elbv2.Options)) (*elbv2.AddTagsOutput, error)
}

var (
	_ API                  = (*elbv2.Client)(nil)
	_ target.Target        = (*Target)(nil)
	_ target.Describer     = (*Target)(nil)
	_ target.RepairPlanner = (*Target)(nil)
)

// Config selects the load balancer, its listeners and the two colors.
type Config struct {
	// Name is the ALB (alb-name): every listener of it is switched.
	Name string
	// ListenerARN (listener-arn) switches this one listener only; a
	// rollback then reads it with one call instead of three.
	ListenerARN string
	// BlueTargetGroup and GreenTargetGroup name the colors' target groups
	// (name or ARN). Both empty: found by the tag oops:color=blue|green.
	BlueTargetGroup  string
	GreenTargetGroup string
	// MinHealthy is how many healthy targets a color needs before traffic
	// goes to it; nil: every registered target, and at least one.
	MinHealthy *int
	// PollInterval is how often Verify re-reads target health (default 5s).
	PollInterval time.Duration
}

// Target is an ALB whose listeners forward to a blue and a green target group.
type Target struct {
	api API
	cfg Config

	mu sync.Mutex
	// last is the most recent read: Plan given the State it produced
	// costs no further calls.
	last *snapshot
	// groups are the colors' target groups from the last read: a switch
	// does not change them, so Verify after Apply needs no new read.
	groups map[release.Color]*group
}

// New checks cfg and returns the target; it makes no API call.
func New(api API, cfg Config) (*Target, error) {
	if cfg.Name == "" && cfg.ListenerARN == "" {
		return nil, fmt.Errorf("%w: set alb-name or listener-arn in .oopsrc", target.ErrMisconfigured)
	}
	if cfg.ListenerARN != "" {
		lb, _, ok := parseListenerARN(cfg.ListenerARN)
		if !ok {
			return nil, fmt.Errorf("%w: listener-arn %q is not an application load balancer listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)", target.ErrMisconfigured, cfg.ListenerARN)
		}
		if cfg.Name != "" && cfg.Name != lb {
			return nil, fmt.Errorf("%w: listener-arn belongs to ALB %q, not to alb-name %q", target.ErrMisconfigured, lb, cfg.Name)
		}
	}
	if (cfg.BlueTargetGroup == "") != (cfg.GreenTargetGroup == "") {
		return nil, fmt.Errorf("%w: set both blue-target-group and green-target-group, or neither to find them by the tag %s", target.ErrMisconfigured, TagColor)
	}
	if cfg.BlueTargetGroup != "" && cfg.BlueTargetGroup == cfg.GreenTargetGroup {
		return nil, fmt.Errorf("%w: blue-target-group and green-target-group are both %q", target.ErrMisconfigured, cfg.BlueTargetGroup)
	}
	if cfg.MinHealthy != nil && *cfg.MinHealthy < 0 {
		return nil, fmt.Errorf("%w: min-healthy is %d; use 0 or more", target.ErrMisconfigured, *cfg.MinHealthy)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	return &Target{api: api, cfg: cfg}, nil
}

func (t *Target) String() string {
	if t.cfg.ListenerARN != "" {
		lb, id, _ := parseListenerARN(t.cfg.ListenerARN)
		return fmt.Sprintf("ALB %s listener %s", lb, id)
	}
	return "ALB " + t.cfg.Name
}

// State reads which target group the listeners and color rules send
// traffic to, and with which weights. When they disagree it returns the
// state read (Listeners shows each one exactly) with an error wrapping
// target.ErrInconsistent.
func (t *Target) State(ctx context.Context) (*target.State, error) {
	s, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	return s.state, s.split
}

// Describe is State plus each color's targets and their health (one
// DescribeTargetHealth per color, which a switch does not need).
func (t *Target) Describe(ctx context.Context) (*target.State, error) {
	s, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	for _, cs := range []*target.ColorState{&s.state.Live, &s.state.Off} {
		h, err := t.health(ctx, s.groups[cs.Color])
		if err != nil {
			return s.state, err
		}
		cs.Instances = h.instances
		cs.Healthy = aws.Bool(h.check(cs.Color, s.groups[cs.Color], t.need(h)) == nil)
	}
	return s.state, s.split
}

// Plan describes sending weight percent of the traffic to color to and the
// rest to the other color, on every listener and color rule.
func (t *Target) Plan(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
	if !to.Valid() {
		return nil, fmt.Errorf("plan switch: %q is not a color", to)
	}
	if weight < 0 || weight > 100 {
		return nil, fmt.Errorf("plan switch: weight %d is not a percentage (0-100)", weight)
	}
	s, err := t.snapshotFor(ctx, st)
	if err != nil {
		return nil, err
	}
	if s.split != nil {
		return nil, s.split
	}
	return t.plan(s, to, weight, ""), nil
}

// Apply makes the calls of p in order: listeners by port, each followed by
// its color rules. Each call is atomic; if one fails after others
// succeeded, the error says which listeners moved and wraps
// target.ErrInconsistent, and the next State reports the split until
// Repair (or another switch) puts every listener on one color.
func (t *Target) Apply(ctx context.Context, p *target.Plan) error {
	t.mu.Lock()
	t.last = nil // whatever happens, the next read must ask AWS
	t.mu.Unlock()
	return p.Run(ctx) // the calls p was made with: see plan
}

// Probe checks that color c has at least min-healthy healthy targets.
func (t *Target) Probe(ctx context.Context, c release.Color) error {
	g, err := t.group(ctx, c)
	if err != nil {
		return err
	}
	return t.probeGroup(ctx, c, g)
}

// Verify waits up to timeout for c to have min-healthy healthy targets,
// and fails at once when too many have failed their health checks for
// that to happen (as the Classic ELB fails on OutOfService).
func (t *Target) Verify(ctx context.Context, c release.Color, timeout time.Duration) error {
	g, err := t.group(ctx, c)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		h, err := t.health(ctx, g)
		if err == nil {
			need := t.need(h)
			if err = h.check(c, g, need); err == nil {
				return nil
			}
			if h.healthy+h.waiting < need {
				return err
			}
		}
		if time.Now().Add(t.cfg.PollInterval).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("verify %s: %w (last: %v)", c, ctx.Err(), err)
		case <-time.After(t.cfg.PollInterval):
		}
	}
}

// SetCommit tags c's target group with oops:commit.
func (t *Target) SetCommit(ctx context.Context, c release.Color, commit string) error {
	if commit == "" {
		return fmt.Errorf("record commit of %s: empty commit", c)
	}
	g, err := t.group(ctx, c)
	if err != nil {
		return err
	}
	// The same call clears the installing mark: the release passed.
	tt := append(tags(TagCommit, commit), tags(TagInstalling, "")...)
	if _, err := t.api.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{g.arn}, Tags: tt}); err != nil {
		return t.explain("AddTags", g.name, err)
	}
	t.mu.Lock()
	t.last = nil
	t.mu.Unlock()
	return nil
}

// group returns color c's target group from the last read, or reads.
func (t *Target) group(ctx context.Context, c release.Color) (*group, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("%q is not a color", c)
	}
	t.mu.Lock()
	groups := t.groups
	t.mu.Unlock()
	if groups == nil {
		s, err := t.read(ctx)
		if err != nil {
			return nil, err
		}
		groups = s.groups
	}
	return groups[c], nil
}

// snapshotFor returns the read that produced st, or reads again.
func (t *Target) snapshotFor(ctx context.Context, st *target.State) (*snapshot, error) {
	t.mu.Lock()
	s := t.last
	t.mu.Unlock()
	if s != nil && st != nil && s.state == st {
		return s, nil
	}
	return t.read(ctx)
}

// isAPIError reports an answer from AWS (as opposed to no answer at all).
func isAPIError(err error) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae)
}

// isNotFound reports an AWS error code of the *NotFound family.
func isNotFound(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
