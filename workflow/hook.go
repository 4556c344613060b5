package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// The variables the CodeDeploy agent sets for every lifecycle hook script.
const (
	EnvLifecycleEvent  = "LIFECYCLE_EVENT"
	EnvDeploymentID    = "DEPLOYMENT_ID"
	EnvApplicationName = "APPLICATION_NAME"
	EnvDeploymentGroup = "DEPLOYMENT_GROUP_NAME"
)

// defaultHealthPath is the original tool's health check path.
const defaultHealthPath = "/healthcheck"

// Deployment is what the hook protocol reads of a CodeDeploy deployment.
type Deployment struct {
	// Commit is the release it installs ("" when CodeDeploy cannot tell).
	Commit string
	// Watched: a waiting `oops deploy` started it, and switches itself
	// when it succeeds.
	Watched bool
}

// DeploymentReader reads CodeDeploy deployments by id.
type DeploymentReader interface {
	Deployment(ctx context.Context, id string) (Deployment, error)
}

// HookEnv is what a hook script needs to know.
type HookEnv struct {
	// Color is the color this deployment installs, Port its port.
	Color     release.Color `json:"color"`
	Port      int           `json:"port"`
	LiveColor release.Color `json:"live_color"`
	LivePort  int           `json:"live_port"`
	// Commit is the release being deployed ("" when CodeDeploy could not
	// tell: the instance role lacks codedeploy:GetDeployment).
	Commit          string `json:"commit"`
	DeploymentID    string `json:"deployment_id,omitempty"`
	LifecycleEvent  string `json:"lifecycle_event,omitempty"`
	Application     string `json:"application"`
	DeploymentGroup string `json:"deployment_group,omitempty"`
	HealthURL       string `json:"health_url"`
	// Switched is true once `oops hook switch` moved traffic for this deployment.
	Switched bool `json:"switched"`

	// Not printed: for hook switch.
	watched bool
	marker  *hookMarker
	etag    string
	state   *target.State
	target  target.Target
}

// HookEnv works out the deployment's color and the rest of HookEnv, from
// the agent's variables, the deployment, its hook marker and the target.
// host is where this instance's colors answer.
func (r *Runner) HookEnv(ctx context.Context, host string) (*HookEnv, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	env := &HookEnv{
		DeploymentID:    r.d.Getenv(EnvDeploymentID),
		LifecycleEvent:  r.d.Getenv(EnvLifecycleEvent),
		Application:     c.ApplicationName,
		DeploymentGroup: r.d.Getenv(EnvDeploymentGroup),
	}
	if env.DeploymentGroup == "" {
		env.DeploymentGroup = c.DeploymentGroup
	}
	if app := r.d.Getenv(EnvApplicationName); app != "" && app != c.ApplicationName {
		r.warnf("warning: CodeDeploy application %q is not %q from %s", app, c.ApplicationName, c.Path)
	}
	if env.DeploymentID != "" {
		if d, err := r.d.Deployments(ctx); err != nil {
			r.warnf("warning: cannot read deployment %s: %v", env.DeploymentID, err)
		} else if dep, err := d.Deployment(ctx, env.DeploymentID); err != nil {
			r.warnf("warning: cannot tell which commit deployment %s installs: %v", env.DeploymentID, err)
		} else {
			env.Commit, env.watched = dep.Commit, dep.Watched
		}
		if env.marker, env.etag, err = r.readHookMarker(ctx, env.DeploymentID); err != nil {
			return nil, err
		}
	}
	t, err := r.d.Target(ctx)
	if err != nil {
		return nil, err
	}
	st, err := t.State(ctx)
	if err != nil {
		return nil, err
	}
	env.target, env.state = t, st
	env.Color = st.Off.Color
	if env.marker != nil {
		// After `oops hook switch` the installed color is live; later hooks
		// of the same deployment must still see it as theirs.
		env.Color, env.Switched = env.marker.Color, env.marker.Switched
	}
	if c.BlueDeploymentGroup != "" && env.marker == nil {
		// A deployment group per color: the group says which color this
		// instance is, whatever is live.
		switch env.DeploymentGroup {
		case c.BlueDeploymentGroup:
			env.Color = release.Blue
		case c.GreenDeploymentGroup:
			env.Color = release.Green
		}
	}
	env.Port = st.Color(env.Color).Port
	env.LiveColor, env.LivePort = st.Live.Color, st.Live.Port
	if tp, ok := t.(targetGroupPort); ok && env.Port == 0 {
		// An ALB's colors are target groups: their ports are the colors'.
		if _, env.Port, err = tp.TargetGroup(ctx, env.Color); err != nil {
			return nil, fmt.Errorf("find the port of %s on %s: %w", env.Color, t, err)
		}
		if _, env.LivePort, err = tp.TargetGroup(ctx, env.LiveColor); err != nil {
			return nil, fmt.Errorf("find the port of %s on %s: %w", env.LiveColor, t, err)
		}
	}
	if env.Port == 0 {
		return nil, fmt.Errorf("find the port of %s on %s: %w: no %s=<port> tag", env.Color, t, target.ErrMisconfigured, env.Color)
	}
	if env.HealthURL, err = HookHealthURL(c, host, env.Port, st.HealthCheck); err != nil {
		return nil, err
	}
	return env, nil
}

// targetGroupPort is a target whose colors are target groups (ALB): the
// port of each is its target group's.
type targetGroupPort interface {
	TargetGroup(ctx context.Context, c release.Color) (name string, port int, err error)
}

// HookHealthURL is the color's health check on this instance: host and
// port of the color, path from health-check-url, else health-path, else
// the load balancer's health check (lbCheck), else /healthcheck.
func HookHealthURL(c *config.Config, host string, port int, lbCheck string) (string, error) {
	var path string
	switch {
	case c.HealthCheckURL != "":
		raw := strings.NewReplacer("{ip}", "127.0.0.1", "{port}", strconv.Itoa(port)).Replace(c.HealthCheckURL)
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return "", &config.Error{Path: c.Path, Msg: fmt.Sprintf("health-check-url %q is not a URL", c.HealthCheckURL),
				Hint: `write it like "http://{ip}:{port}/healthcheck"`}
		}
		path = u.RequestURI()
	case c.HealthPath != "":
		path = c.HealthPath
	case strings.HasPrefix(strings.ToUpper(lbCheck), "HTTP") && strings.Contains(lbCheck, "/"):
		// Classic ELB health checks read "HTTP:8001/healthcheck".
		path = lbCheck[strings.Index(lbCheck, "/"):]
	default:
		path = defaultHealthPath
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + path, nil
}

// hookMarker records, per deployment, the color `oops hook switch` sends
// traffic to. Written before the switch, so a hook that dies half-way is
// finished by the next call; marked Switched after, so a second call after
// a completed switch changes nothing (not even a later rollback).
type hookMarker struct {
	Deployment string        `json:"deployment"`
	Color      release.Color `json:"color"`
	Commit     string        `json:"commit,omitempty"`
	Switched   bool          `json:"switched"`
	Time       time.Time     `json:"time"`
}

func (r *Runner) hookMarkerKey(id string) (string, error) {
	c, err := r.d.Config()
	if err != nil {
		return "", err
	}
	return c.ApplicationName + "/" + store.MetaDir + "/hooks/" + id + ".json", nil
}

// readHookMarker reads a deployment's marker; nil when there is none.
func (r *Runner) readHookMarker(ctx context.Context, id string) (*hookMarker, string, error) {
	key, err := r.hookMarkerKey(id)
	if err != nil {
		return nil, "", err
	}
	s, err := r.d.Store(ctx)
	if err != nil {
		return nil, "", err
	}
	rc, obj, err := s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read hook marker %s: %w", key, err)
	}
	defer rc.Close()
	var m hookMarker
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return nil, "", fmt.Errorf("read hook marker %s: %w", key, err)
	}
	return &m, obj.ETag, nil
}

// writeHookMarker creates (etag "") or replaces a deployment's marker.
func (r *Runner) writeHookMarker(ctx context.Context, m *hookMarker, etag string) (string, error) {
	key, err := r.hookMarkerKey(m.Deployment)
	if err != nil {
		return "", err
	}
	s, err := r.d.Store(ctx)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	var obj store.Object
	if etag == "" {
		obj, err = s.Create(ctx, key, bytes.NewReader(body), int64(len(body)), nil)
	} else {
		obj, err = s.Replace(ctx, key, body, etag)
	}
	if err != nil {
		return "", fmt.Errorf("write hook marker %s: %w", key, err)
	}
	return obj.ETag, nil
}

// HookSwitchRequest is how `oops hook switch` switches.
type HookSwitchRequest struct {
	DryRun, Force bool
	// Verify bounds the verification after the switch (0: none); cmd
	// resolves it from the flag or .oopsrc.
	Verify time.Duration
	// Confirm asks the operator question before plan is applied.
	Confirm func(question string, plan *target.Plan) (bool, error)
}

// HookSwitchOutcome is what `oops hook switch` did. At most one of
// Watched, AlreadySwitched, DryRun and Switched is set.
type HookSwitchOutcome struct {
	Deployment string
	// Color is the deployment's color.
	Color release.Color
	// Watched: a waiting `oops deploy` switches when the deployment
	// succeeds; nothing was done.
	Watched bool
	// AlreadySwitched: a hook of this deployment switched before; nothing
	// was done.
	AlreadySwitched bool
	// DryRun: Plan is what a switch would do, nil when Color is already live.
	DryRun bool
	Plan   *target.Plan
	// Switched: traffic moved to Color, and the deployment is marked so.
	Switched bool
}

// HookSwitch switches the target to the color env's deployment installed,
// once per deployment, under the application's lock: the marker is written
// before the switch (a hook that dies half-way is finished by the next
// call) and marked switched after (a retried hook changes nothing). The
// outcome is returned with the error when the lock ran: it may say what
// was done before the lock was found lost.
func (r *Runner) HookSwitch(ctx context.Context, env *HookEnv, req HookSwitchRequest) (*HookSwitchOutcome, error) {
	id := env.DeploymentID
	out := &HookSwitchOutcome{Deployment: id, Color: env.Color}
	if env.watched {
		out.Watched = true
		return out, nil
	}
	if env.Switched {
		out.AlreadySwitched = true
		return out, nil
	}
	reason := fmt.Sprintf("CodeDeploy deployment %s", id)
	if env.LifecycleEvent != "" {
		reason += " (" + env.LifecycleEvent + ")"
	}
	sw := target.SwitchOptions{
		To: env.Color, Force: req.Force, DryRun: req.DryRun, VerifyTimeout: req.Verify, Resume: true,
		Logf: r.d.Report.Progressf,
		Confirm: func(p *target.Plan) (bool, error) {
			return req.Confirm(fmt.Sprintf("Switch %s from %s to %s?", env.target, p.From, p.To), p)
		},
	}
	if req.DryRun {
		res, err := target.Switch(ctx, env.target, sw)
		if err != nil {
			return nil, err
		}
		out.DryRun, out.Plan = true, res.Plan
		return out, nil
	}
	err := r.Locked(ctx, Change{Action: release.ActionSwitch, Command: "oops hook switch", Reason: reason}, func(ctx context.Context, ev *release.Event) error {
		ev.Deployment = id
		ev.Target = env.target.String()
		ev.From = release.Side{Color: env.state.Live.Color, Commit: env.state.Live.Commit}
		ev.To = release.Side{Color: env.Color, Commit: env.Commit}
		// .oopsrc's stage hooks, as for any switch.
		sw.PreSwitch = func(ctx context.Context, st *target.State, p *target.Plan) error {
			return r.gateHook(ctx, StagePreSwitch, ev, colorURL(st, p.To), req.Force)
		}
		res, err := r.hookSwitchOnce(ctx, env, sw, out)
		r.switchHooks(ctx, ev, res, err)
		return err
	})
	// out says what was done even when the lock was lost after it.
	return out, err
}

// hookSwitchOnce is HookSwitch under the lock: the marker re-read (another
// instance's hook may have switched since HookEnv looked), written before
// the switch, marked switched after.
// It returns the switch's result (nil when it did not switch).
func (r *Runner) hookSwitchOnce(ctx context.Context, env *HookEnv, sw target.SwitchOptions, out *HookSwitchOutcome) (*target.SwitchResult, error) {
	id := env.DeploymentID
	m, etag, err := r.readHookMarker(ctx, id)
	if err != nil {
		return nil, err
	}
	if m != nil && m.Switched {
		out.Color, out.AlreadySwitched = m.Color, true
		return nil, nil
	}
	if m == nil {
		m = &hookMarker{Deployment: id, Color: env.Color, Commit: env.Commit, Time: r.d.Now().UTC()}
		if etag, err = r.writeHookMarker(ctx, m, ""); err != nil {
			return nil, err
		}
	}
	if m.Commit != "" {
		if err := env.target.SetCommit(ctx, m.Color, m.Commit); err != nil {
			return nil, fmt.Errorf("record commit %s on %s: %w", release.Short(m.Commit), m.Color, err)
		}
	}
	res, err := target.Switch(ctx, env.target, sw)
	if err != nil {
		return res, err
	}
	m.Switched, m.Time = true, r.d.Now().UTC()
	if _, err := r.writeHookMarker(ctx, m, etag); err != nil {
		return res, err
	}
	out.Color, out.Switched = m.Color, true
	return res, nil
}

// HookWaitHealthy waits until the color the deployment installs answers
// its health check on this instance (host), for `oops hook wait-healthy`:
// a failure fails the lifecycle event, and so the deployment, before any
// traffic moves.
func (r *Runner) HookWaitHealthy(ctx context.Context, host string, timeout, interval time.Duration) error {
	env, err := r.HookEnv(ctx, host)
	if err != nil {
		return err
	}
	return WaitHealthy(ctx, r.d.Report, env.Color, env.HealthURL, timeout, interval)
}

// WaitHealthy polls url until it answers healthy (health.OK: 2xx or 3xx)
// or timeout passes, saying each new reason once so the agent's log shows
// how it went.
func WaitHealthy(ctx context.Context, report Reporter, color release.Color, url string, timeout, interval time.Duration) error {
	start := time.Now()
	report.Progressf("waiting up to %s for %s to answer %s", timeout, color, url)
	err := health.Wait(ctx, health.Client(5*time.Second), url, "oops-hook", timeout, interval, func(err error) {
		report.Progressf("  not yet: %v", err)
	})
	switch {
	case err == nil:
		report.Progressf("%s is healthy after %s", color, time.Since(start).Round(100*time.Millisecond))
		return nil
	case err == ctx.Err():
		return fmt.Errorf("wait for %s: %w", color, err)
	}
	return fmt.Errorf("%s did not become healthy within %s: %w: %v", color, timeout, target.ErrUnhealthy, err)
}

// Shell is e as shell assignments, for eval in an appspec script.
func (e *HookEnv) Shell() string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"OOPS_COLOR", string(e.Color)},
		{"OOPS_PORT", strconv.Itoa(e.Port)},
		{"OOPS_LIVE_COLOR", string(e.LiveColor)},
		{"OOPS_LIVE_PORT", strconv.Itoa(e.LivePort)},
		{"OOPS_COMMIT", e.Commit},
		{"OOPS_DEPLOYMENT_ID", e.DeploymentID},
		{"OOPS_LIFECYCLE_EVENT", e.LifecycleEvent},
		{"OOPS_APPLICATION", e.Application},
		{"OOPS_HEALTH_URL", e.HealthURL},
	} {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return b.String()
}

// shellQuote quotes s for sh, only when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
