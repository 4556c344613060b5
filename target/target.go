// Package target switches live traffic between the two colors of an
// application. Backends (target/elb, target/alb, target/local) implement the
// Target interface; Switch, in this package, is the one health-gated,
// verified switch they all share.
package target

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oops-deploy/oops/release"
)

var (
	// ErrUnhealthy: the color to switch to failed its health gate.
	ErrUnhealthy = errors.New("unhealthy")
	// ErrInconsistent: the target is in a state oops will not guess about
	// (split listeners, an interrupted switch, missing tags).
	ErrInconsistent = errors.New("inconsistent state")
	// ErrVerifyFailed: after a switch the new color did not become healthy
	// and traffic was switched back.
	ErrVerifyFailed = errors.New("verification failed")
	// ErrVerifyInterrupted: the operator stopped the post-switch
	// verification (Ctrl-C); the switch stands, unverified.
	ErrVerifyInterrupted = errors.New("verification interrupted, the switch stands")
	// ErrMisconfigured: the target is not set up the way oops needs
	// (missing or bad tags, unknown load balancer).
	ErrMisconfigured = errors.New("misconfigured")
)

// Instance is one backend behind a color.
type Instance struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
	State   string `json:"state"`
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
}

// UnknownCommit is ColorState.Commit when the target cannot tell which
// commit a color runs (oops did not deploy it there); it is shown, and
// written to --json, as is.
const UnknownCommit = "unknown"

// ColorState is what one color is and runs.
type ColorState struct {
	Color       release.Color `json:"color"`
	Port        int           `json:"port,omitempty"`
	Commit      string        `json:"commit"`
	TargetGroup string        `json:"target_group,omitempty"`
	// Record is the color's DNS record on a Route 53 target ("A 10.0.0.1").
	Record string `json:"record,omitempty"`
	// Weight is the percentage of traffic this color receives.
	Weight    int        `json:"weight"`
	PID       int        `json:"pid,omitempty"`
	Healthy   *bool      `json:"healthy,omitempty"`
	Instances []Instance `json:"instances,omitempty"`
	// Installing: Commit was put on this color but has not passed its
	// health check (a deploy is under way, or was killed before it
	// finished). It is no known-good rollback target, and a deploy of the
	// same commit installs it again rather than switching to it as is.
	Installing bool `json:"installing,omitempty"`
	// Traffic is what the color served lately, where the target measures
	// it (the local proxy); nil elsewhere.
	Traffic *Traffic `json:"traffic,omitempty"`
	// Group is the color's auto-scaling group, where the colors are
	// groups (an ALB with blue-asg/green-asg); nil elsewhere.
	Group *Group `json:"group,omitempty"`
}

// Group is a color's auto-scaling group: its size and whether it is warm.
type Group struct {
	Name      string `json:"name"`
	Desired   int    `json:"desired"`
	Min       int    `json:"min"`
	Max       int    `json:"max"`
	InService int    `json:"in_service"`
	// Warm: at least Need instances are InService, so traffic can go to
	// the color at once; a cold color is scaled up to Need first.
	Warm bool `json:"warm"`
	Need int  `json:"need"`
}

// CommitKnown says whether Commit names a commit: false when it is empty
// or UnknownCommit, so nothing can be looked up or recorded about it.
func (c ColorState) CommitKnown() bool {
	return c.Commit != "" && c.Commit != UnknownCommit
}

// Where names the color's place on its target: "port 8081", or "target
// group web-green" behind an ALB.
func (c ColorState) Where() string {
	if c.Port == 0 && c.TargetGroup != "" {
		return "target group " + c.TargetGroup
	}
	if c.Port == 0 && c.Record != "" {
		return "record " + c.Record
	}
	return fmt.Sprintf("port %d", c.Port)
}

// Traffic summarises the requests a color served over a recent window.
type Traffic struct {
	// Seconds is the window: the last minute, or less after a start.
	Seconds  float64 `json:"seconds"`
	Requests uint64  `json:"requests"`
	// Rate is requests per second over the window.
	Rate float64 `json:"rate"`
	// ServerErrors answered 5xx: the app's, and the proxy's own when the
	// color did not answer. ServerErrorShare is their share of Requests.
	ServerErrors     uint64  `json:"server_errors"`
	ServerErrorShare float64 `json:"server_error_share"`
	// Cut got no complete answer (drain timeout, client gone).
	Cut uint64 `json:"cut"`
	// P99Seconds is the 99th percentile of the requests' durations
	// (estimated from histogram buckets); absent without requests.
	P99Seconds *float64 `json:"p99_seconds,omitempty"`
	// P99Over: the p99 is past the slowest bucket, so only known to be
	// more than P99Seconds.
	P99Over bool `json:"p99_over,omitempty"`
}

// Intent is a switch that was recorded as started but not as finished.
type Intent struct {
	From release.Color `json:"from"`
	To   release.Color `json:"to"`
	// Started and By are known when the target recorded them (zero otherwise).
	Started time.Time `json:"started,omitzero"`
	By      string    `json:"by,omitempty"`
}

// State is a target's current traffic assignment. JSON keeps the original
// tool's {"active":{"color","port"},"off":{"color","port"}} shape.
type State struct {
	Kind        string     `json:"kind"`
	Name        string     `json:"name"`
	Live        ColorState `json:"active"`
	Off         ColorState `json:"off"`
	HealthCheck string     `json:"health_check,omitempty"`
	// Pending is an interrupted switch. State returns it together with an
	// error wrapping ErrInconsistent (the state is not one oops switches
	// from), so that callers can report it and offer to finish or undo it.
	Pending *Intent `json:"pending,omitempty"`
	// Listeners describes what carries the traffic, one line each
	// ("HTTPS:443 -> HTTP:8081"), for status.
	Listeners []string `json:"listeners,omitempty"`
	// Base is set while traffic is split between the colors (a canary on
	// a target with weights): the color that had all of it before the split
	// began. A switch to "the off color" (rollback) goes back there.
	Base release.Color `json:"base,omitempty"`
	// Notes are further lines for status, name and text: a Route 53
	// target's records, TTL, and when the old color can be stopped.
	Notes []Note `json:"notes,omitempty"`
	// Propagation is set where clients cache the switch (DNS): how long
	// the color switched away from may still be reached.
	Propagation *Propagation `json:"propagation,omitempty"`
	// Observed is the backend's own reading this State was made from, so
	// that Plan given this State needs no second read. Backends read again
	// when it is nil or not theirs (a State built elsewhere).
	Observed any `json:"-"`
}

// Propagation says, for scripts, when the color a switch left stops
// getting requests from clients that cached the old answer.
type Propagation struct {
	TTLSeconds int `json:"ttl_seconds"`
	// SwitchedAt is oops's last switch, zero when unknown (the weights
	// were set by hand); OldColorUntil is SwitchedAt plus the TTL.
	SwitchedAt    time.Time `json:"switched_at,omitzero"`
	OldColorUntil time.Time `json:"old_color_until,omitzero"`
}

// Note is one line status prints under its table ("switched: 2m ago ...").
type Note struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// Color returns the state of c.
func (s *State) Color(c release.Color) ColorState {
	if s.Live.Color == c {
		return s.Live
	}
	return s.Off
}

// Plan is an exact description of the calls a switch will make, and,
// when the backend made it with NewPlan, those calls themselves: the plan,
// not the target that made it, holds what Apply runs, so a plan never
// applied (--dry-run) leaves nothing behind.
type Plan struct {
	From release.Color
	To   release.Color
	// Weight is the share of traffic (percent) the To color gets; 100 is a
	// full switch. Only targets that support weights accept less.
	Weight int
	// Steps are human-readable lines, printed by --dry-run.
	Steps []string

	apply func(ctx context.Context) error // the calls Steps describe
	used  atomic.Bool                     // Run refuses a second time
}

// NewPlan is a plan whose Run makes the calls apply (which Steps describe).
func NewPlan(from, to release.Color, weight int, steps []string, apply func(ctx context.Context) error) *Plan {
	return &Plan{From: from, To: to, Weight: weight, Steps: steps, apply: apply}
}

// Run makes the plan's calls, once: a plan is made from one reading of the
// target, and running it again would replay calls made for a state that is
// gone. Backends' Apply call it; a plan without calls (not made by
// NewPlan) is refused.
func (p *Plan) Run(ctx context.Context) error {
	if p.apply == nil {
		return fmt.Errorf("apply plan %s -> %s: the plan has no calls to make (it was not made by a target's Plan)", p.From, p.To)
	}
	if p.used.Swap(true) {
		return fmt.Errorf("apply plan %s -> %s: the plan was applied already", p.From, p.To)
	}
	return p.apply(ctx)
}

func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "switch %s -> %s", p.From, p.To)
	if p.Weight > 0 && p.Weight < 100 {
		fmt.Fprintf(&b, " (%d%%)", p.Weight)
	}
	b.WriteString(":\n")
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, s)
	}
	return b.String()
}

// Target is a place where traffic is switched between two colors.
type Target interface {
	// String names the target, e.g. "classic ELB my-elb".
	String() string
	// State reads the current assignment from the target itself. A state
	// oops will not guess about is an error wrapping ErrInconsistent or
	// ErrMisconfigured that says what to run next.
	State(ctx context.Context) (*State, error)
	// Plan describes switching the state st to color to (weight percent).
	Plan(ctx context.Context, st *State, to release.Color, weight int) (*Plan, error)
	// Apply carries out a plan, crash-safely: the intent is recorded before
	// the first change and cleared after the last.
	Apply(ctx context.Context, p *Plan) error
	// Probe checks color c before traffic is sent to it; an error wraps
	// ErrUnhealthy and names what failed.
	Probe(ctx context.Context, c release.Color) error
	// Verify waits up to timeout for c to be healthy while taking traffic.
	Verify(ctx context.Context, c release.Color, timeout time.Duration) error
	// Repair finishes or undoes an interrupted switch, leaving all traffic
	// on one color, and describes what it did ("" when nothing was needed).
	Repair(ctx context.Context) (string, error)
	// SetCommit records which commit color c runs.
	SetCommit(ctx context.Context, c release.Color, commit string) error
}

// Describer is implemented by targets whose State leaves out details that
// cost extra calls (per-instance health), so that a switch stays within its
// call budget; oops status asks for them through Describe.
type Describer interface {
	// Describe is State plus per-color instance health.
	Describe(ctx context.Context) (*State, error)
}

// RepairPlanner is implemented by targets that can describe a repair before
// making it (oops repair --dry-run, oops rollback finishing an interrupted
// switch). Apply carries out the returned plan.
type RepairPlanner interface {
	// PlanRepair returns the plan that leaves all traffic on color to, or
	// on the color the target's own records point at when to is "". It
	// returns nil when nothing needs repairing.
	PlanRepair(ctx context.Context, to release.Color) (*Plan, error)
}

// Scaler is implemented by targets whose colors have a size
// (auto-scaling groups): oops downscale stands the old color by.
type Scaler interface {
	// PlanScale describes setting color c's size to desired (its minimum
	// lowered to match when needed); Apply carries it out.
	PlanScale(ctx context.Context, st *State, c release.Color, desired int) (*Plan, error)
}

// Hinted wraps err with the next thing to try (a command to run); the CLI
// prints the hint on its own line under the error.
func Hinted(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// Hint is the advice printed under the error.
func (h *hinted) Hint() string { return h.hint }

// Deployer installs a release on a color without switching traffic to it.
type Deployer interface {
	Deploy(ctx context.Context, req DeployRequest) (*Deployment, error)
}

// StepDescriber is a Deployer that says exactly what its Deploy would do,
// for deploy --dry-run (one line, no call made).
type StepDescriber interface {
	DeployStep(req DeployRequest) string
}

// DeployRequest asks a Deployer to put a release on a color.
type DeployRequest struct {
	Release release.Release
	// Bucket is the S3 bucket holding Release.Key, when the store is S3.
	Bucket string
	Color  release.Color
	Port   int
	// Description is recorded with the deployment (commit, who, why).
	Description string
	// Wait for the deployment to finish (CodeDeploy); local deploys always wait.
	Wait    bool
	Timeout time.Duration
	// Progress receives human-readable progress lines.
	Progress func(format string, args ...any)
}

// Deployment is the outcome of a deploy.
type Deployment struct {
	ID     string
	Status string
}

// ErrDeployFailed: a deployment did not succeed; traffic was not switched.
var ErrDeployFailed = errors.New("deployment failed")

// ErrNotStarted: a deploy failed before it changed anything on the color
// (AWS refused the first call that would have): the release the color ran
// before still runs there, and is still what a rollback goes back to.
var ErrNotStarted = errors.New("install not started")

// NotStarted marks err as ErrNotStarted, its message unchanged.
func NotStarted(err error) error {
	if err == nil {
		return nil
	}
	return notStarted{err}
}

type notStarted struct{ error }

func (e notStarted) Unwrap() error        { return e.error }
func (e notStarted) Is(target error) bool { return target == ErrNotStarted }

// ErrIntegrity: a release's artifact does not match the size and SHA-256
// recorded when it was published; nothing was unpacked, stopped or
// switched.
var ErrIntegrity = errors.New("release integrity check failed")

// afterInstallKey marks a context whose switch follows an install.
type afterInstallKey struct{}

// AfterInstall marks ctx: the switch planned with it follows an install
// onto color c (deploy --dry-run plans it before the install), so c will
// be at full size by then; a target that scales a cold color up first
// (target/asg) leaves that step out.
func AfterInstall(ctx context.Context, c release.Color) context.Context {
	return context.WithValue(ctx, afterInstallKey{}, c)
}

// scaleTimeoutKey carries a command's --timeout for a cold scale-up.
type scaleTimeoutKey struct{}

// WithScaleTimeout marks ctx: a switch planned with it onto a cold color
// (target/asg) waits at most d for it to be scaled up (oops rollback
// --timeout), instead of the target's scale-timeout.
func WithScaleTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, scaleTimeoutKey{}, d)
}

// ScaleTimeout is the duration WithScaleTimeout marked ctx with, or def.
func ScaleTimeout(ctx context.Context, def time.Duration) time.Duration {
	if d, _ := ctx.Value(scaleTimeoutKey{}).(time.Duration); d > 0 {
		return d
	}
	return def
}

// InstalledBefore is the color AfterInstall marked ctx with, or "".
func InstalledBefore(ctx context.Context) release.Color {
	c, _ := ctx.Value(afterInstallKey{}).(release.Color)
	return c
}

// Counts are a color's cumulative request counts since they started
// (the local proxy's start): the bake reads them every analysis-interval
// and judges the difference.
type Counts struct {
	Requests     uint64
	ServerErrors uint64
	// Bounds are the latency histogram's upper bounds in seconds; Buckets
	// are cumulative, one more than Bounds (the last counts all).
	Bounds  []float64
	Buckets []uint64
}

// Counter is implemented by targets that count each color's requests
// themselves (the local proxy).
type Counter interface {
	Counts(ctx context.Context, c release.Color) (*Counts, error)
}

// ErrAnalysisFailed: a bake's measurements of the new color failed
// failure-limit times in a row. Switch then switches back, as after a
// failed verification (ErrVerifyFailed).
var ErrAnalysisFailed = errors.New("analysis failed")

// Dimensioned is implemented by targets whose colors' requests CloudWatch
// counts (an ALB's target groups): the namespace and dimensions of color
// c's request metrics.
type Dimensioned interface {
	MetricDimensions(ctx context.Context, c release.Color) (namespace string, dims map[string]string, err error)
}
