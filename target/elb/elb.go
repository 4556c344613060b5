// Package elb is the Classic ELB target (elasticloadbalancing), the one the
// original oops switched.
//
// # State comes from the ELB alone
//
// Tags blue=<port> and green=<port> name each color's instance port. The
// live color is the one every color listener (a listener whose instance
// port is one of the two) points at. Listeners on other instance ports are
// left alone. Commits are kept in tags oops:blue-commit and
// oops:green-commit.
//
// # A switch in at most five calls
//
// A rollback reads the ELB (DescribeLoadBalancers and DescribeTags, made
// concurrently) and then makes three changes:
//
//  1. ConfigureHealthCheck: the health check moves to the new color's port,
//     keeping its protocol, path and timings. This call is also the record
//     of the switch in progress: a health check on one color's port while
//     the listeners point at the other's is an interrupted switch toward
//     the health check's color.
//  2. DeleteLoadBalancerListeners: every color listener, in one call.
//  3. CreateLoadBalancerListeners: all of them again on the new port, in one
//     call, with the same load-balancer port, protocols and certificate.
//     The ELB has no listener on those ports only between calls 2 and 3:
//     one round trip.
//
// Listener policies (an SSL negotiation policy on 443, ...) are attached
// again with SetLoadBalancerPoliciesOfListener, one call per listener that
// has any. Backend-server policies (ProxyProtocol, ...) belong to an
// instance port, not a listener: the old port's are set on the new port
// (SetLoadBalancerPoliciesForBackendServer) before anything else changes.
//
// So that a switch killed between 2 and 3 can be finished, the listener
// definitions (without the instance port) are kept in the tag
// oops:listeners, compactly ("L80:HTTP:HTTP L443:HTTPS:HTTP C<cert ARN>
// P<policy>"), split over oops:listeners:2, ... when longer than a tag
// value. It is written (AddTags, before any other change) only when it is
// missing or no longer matches the listeners, so a steady-state rollback
// does not pay for it; recording a commit (SetCommit, at deploy) refreshes
// it too.
//
// When the health check is not on a color port (TCP:22, a separate health
// port) it cannot record the switch: the tag oops:switch ("<to color>
// <time> <who>") is written first and removed last instead, two more calls.
// The same tag is written when the switch re-creates listeners that carry
// policies (an SSL negotiation policy on 443): they exist without them until
// the last calls re-attach them, and a listener whose policy could not be
// put back must read as an unfinished switch (status exits 8, the next
// switch refuses, oops repair re-attaches it), not as a policy removed on
// purpose that the next switch would record and so drop for good.
//
// # Reading back, and repairing
//
// Any oops command that reads the ELB reports an interrupted switch: a
// health check (or oops:switch tag) on one color with listeners on the
// other, recorded listeners missing, or listeners split across both ports.
// Repair leaves all traffic on one color: when the listeners are intact it
// undoes the switch (moves the health check back; traffic never moved),
// otherwise it finishes it toward the color the health check or tag names;
// --to picks the color when nothing says. Rollback finishes an interrupted
// switch. When a call of a switch fails, Apply reads the ELB again and
// either confirms the change was made (an answer lost after the fact) or
// undoes what was done, so that nothing is left half-changed; if that
// fails too, the error says to run oops repair. Once the delete has taken
// effect the switch is finished toward the new color, never undone: the
// re-create on the old port would meet the error that stopped it. A real
// ELB answers a create right after the delete with DuplicateListener (and
// a policy call right after the create with ListenerNotFound) until the
// earlier change settles: those are retried with backoff for up to
// SettleTimeout (a minute). An undo restores the
// listeners, their policies and the health check exactly as the switch
// read them at its start (DescribeLoadBalancers), never an older record
// from the oops:listeners tag.
package elb

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"

	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// API is the part of the Classic ELB API that oops calls.
type API interface {
	DescribeLoadBalancers(ctx context.Context, in *elbsdk.DescribeLoadBalancersInput, optFns ...func(*elbsdk.Options)) (*elbsdk.DescribeLoadBalancersOutput, error)
	DescribeTags(ctx context.Context, in *elbsdk.DescribeTagsInput, optFns ...func(*elbsdk.Options)) (*elbsdk.DescribeTagsOutput, error)
	DescribeInstanceHealth(ctx context.Context, in *elbsdk.DescribeInstanceHealthInput, optFns ...func(*elbsdk.Options)) (*elbsdk.DescribeInstanceHealthOutput, error)
	ConfigureHealthCheck(ctx context.Context, in *elbsdk.ConfigureHealthCheckInput, optFns ...func(*elbsdk.Options)) (*elbsdk.ConfigureHealthCheckOutput, error)
	DeleteLoadBalancerListeners(ctx context.Context, in *elbsdk.DeleteLoadBalancerListenersInput, optFns ...func(*elbsdk.Options)) (*elbsdk.DeleteLoadBalancerListenersOutput, error)
	CreateLoadBalancerListeners(ctx context.Context, in *elbsdk.CreateLoadBalancerListenersInput, optFns ...func(*elbsdk.Options)) (*elbsdk.CreateLoadBalancerListenersOutput, error)
	SetLoadBalancerPoliciesOfListener(ctx context.Context, in *elbsdk.SetLoadBalancerPoliciesOfListenerInput, optFns ...func(*elbsdk.Options)) (*elbsdk.SetLoadBalancerPoliciesOfListenerOutput, error)
	SetLoadBalancerPoliciesForBackendServer(ctx context.Context, in *elbsdk.SetLoadBalancerPoliciesForBackendServerInput, optFns ...func(*elbsdk.Options)) (*elbsdk.SetLoadBalancerPoliciesForBackendServerOutput, error)
	AddTags(ctx context.Context, in *elbsdk.AddTagsInput, optFns ...func(*elbsdk.Options)) (*elbsdk.AddTagsOutput, error)
	RemoveTags(ctx context.Context, in *elbsdk.RemoveTagsInput, optFns ...func(*elbsdk.Options)) (*elbsdk.RemoveTagsOutput, error)
}

var _ API = (*elbsdk.Client)(nil)

// Options tune a Target. The zero value works.
type Options struct {
	// Region is named in error messages.
	Region string
	// HealthCheckURL is the health gate probed before a switch, with {port}
	// (the color's port) and {ip} (each registered instance's address)
	// expanded. Empty: no probe.
	HealthCheckURL string
	// Addresses maps instance IDs to the addresses {ip} expands to (EC2
	// private addresses in production: see EC2Addresses).
	Addresses func(ctx context.Context, instanceIDs []string) (map[string]string, error)
	// HTTPClient makes the probes, its Timeout bounding each; nil:
	// health.Client(ProbeTimeout), which ignores proxy settings (instance
	// addresses are inside the network).
	HTTPClient   *http.Client
	ProbeTimeout time.Duration
	// Ports are the colors' instance ports when the ELB has neither a blue
	// nor a green tag (a preview ELB uses the main one's).
	Ports map[release.Color]int
	// PollInterval is the pause between instance-health reads in Verify.
	PollInterval time.Duration
	// SettleTimeout bounds the retries of an answer that only says an
	// earlier call has not settled yet (DuplicateListener right after the
	// delete, ListenerNotFound right after the create). Default 1 minute.
	SettleTimeout time.Duration
	Now           func() time.Time
	Sleep         func(ctx context.Context, d time.Duration) error
	// Logf receives progress and warnings (stderr).
	Logf func(format string, args ...any)
	// Who is recorded in the oops:switch tag ("user@host").
	Who string
}

// Target is one Classic ELB.
type Target struct {
	api  API
	name string
	opts Options

	mu   sync.Mutex
	last *observation // the latest read, for Probe and Plan
	// epoch counts the changes this Target made: a State's reading
	// (State.Observed) serves Plan only if no change came after it.
	epoch uint64
	// judged is when the health check last moved (by this Target) plus
	// the time its new port needs to be judged: instance health read
	// before then still follows the old port's check.
	judged    time.Time
	judgedFor string // "65s (interval 30s x threshold 2 + timeout 5s)"
}

var _ target.Target = (*Target)(nil)
var _ target.Describer = (*Target)(nil)
var _ target.RepairPlanner = (*Target)(nil)

// New returns the target for the ELB called name.
func New(api API, name string, opts Options) *Target {
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 5 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.SettleTimeout <= 0 {
		opts.SettleTimeout = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = health.Client(opts.ProbeTimeout)
	}
	opts.Ports = maps.Clone(opts.Ports)
	return &Target{api: api, name: name, opts: opts}
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

func (t *Target) String() string { return "classic ELB " + t.name }

// Name is the load balancer's name.
func (t *Target) Name() string { return t.name }

func (t *Target) logf(format string, args ...any) {
	if t.opts.Logf != nil {
		t.opts.Logf(format, args...)
	}
}

func (t *Target) remember(o *observation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = o
}

// forget drops every read: after a change they are out of date.
func (t *Target) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = nil
	t.epoch++
}

// reading is what State.Observed holds: the read a State was made from,
// by which Target and before which of its changes.
type reading struct {
	o     *observation
	by    *Target
	epoch uint64
}

// observed returns the read st was made from, when this Target made it
// and has changed nothing since; nil otherwise (read again).
func (t *Target) observed(st *target.State) *observation {
	r, _ := st.Observed.(*reading)
	t.mu.Lock()
	defer t.mu.Unlock()
	if r == nil || r.by != t || r.epoch != t.epoch {
		return nil
	}
	return r.o
}

func (t *Target) latest(ctx context.Context) (*observation, error) {
	t.mu.Lock()
	o := t.last
	t.mu.Unlock()
	if o != nil {
		return o, nil
	}
	return t.observe(ctx)
}

// State reads the ELB (two calls). An interrupted switch comes back as the
// state read, with Pending set, and an error wrapping ErrInconsistent.
func (t *Target) State(ctx context.Context) (*target.State, error) {
	o, err := t.observe(ctx)
	if err != nil {
		return nil, err
	}
	st := o.state()
	t.mu.Lock()
	st.Observed = &reading{o: o, by: t, epoch: t.epoch}
	t.mu.Unlock()
	if w := o.driftWarning(); w != "" && o.problem == nil {
		t.logf("warning: %s", w)
	}
	if o.problem != nil {
		return st, o.problem
	}
	return st, nil
}

// Describe is State plus the instances' health as the ELB sees it
// (DescribeInstanceHealth), shown under the color the health check is on.
func (t *Target) Describe(ctx context.Context) (*target.State, error) {
	st, serr := t.State(ctx)
	if st == nil {
		return nil, serr
	}
	o, _ := t.latest(ctx)
	out, err := t.api.DescribeInstanceHealth(ctx, &elbsdk.DescribeInstanceHealthInput{LoadBalancerName: aws.String(t.name)})
	if err != nil {
		if serr != nil {
			return st, serr
		}
		return st, t.explain("DescribeInstanceHealth", err)
	}
	insts := make([]target.Instance, 0, len(out.InstanceStates))
	healthy := true
	for _, s := range out.InstanceStates {
		in := instance(s)
		healthy = healthy && in.Healthy
		insts = append(insts, in)
	}
	checked := o.hcColor
	if checked == "" {
		checked = o.traffic
	}
	for _, cs := range []*target.ColorState{&st.Live, &st.Off} {
		if cs.Color == checked && len(insts) > 0 {
			cs.Instances = insts
			cs.Healthy = aws.Bool(healthy)
		}
	}
	return st, serr
}

func instance(s types.InstanceState) target.Instance {
	in := target.Instance{ID: aws.ToString(s.InstanceId), State: aws.ToString(s.State)}
	in.Healthy = in.State == "InService"
	if !in.Healthy {
		in.Reason = oneLine(aws.ToString(s.Description))
	}
	return in
}

// SetCommit records in the tag oops:<color>-commit which commit c runs.
// The same call refreshes the listener record when it is stale, so the
// next rollback does not have to.
func (t *Target) SetCommit(ctx context.Context, c release.Color, commit string) error {
	if !c.Valid() {
		return fmt.Errorf("record commit: %q is not a color", c)
	}
	tags := []types.Tag{{Key: aws.String(commitTag(string(c))), Value: aws.String(commit)}}
	o, oerr := t.observe(ctx)
	if oerr == nil && o.complete != "" && !sameDefs(o.record, o.defs) {
		if rec, err := t.recordTags(o, o.defs); err == nil {
			tags = append(tags, rec...)
		}
	}
	if oerr != nil || o.installing[c] != "" {
		// The release passed: c is no longer installing.
		tags = append(tags, verifiedTag(c))
	}
	_, err := t.api.AddTags(ctx, &elbsdk.AddTagsInput{LoadBalancerNames: []string{t.name}, Tags: tags})
	t.forget()
	return t.explain("AddTags", err)
}
