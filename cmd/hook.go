package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/codedeploy"
)

// The variables the CodeDeploy agent sets for every lifecycle hook script.
const (
	envLifecycleEvent  = "LIFECYCLE_EVENT"
	envDeploymentID    = "DEPLOYMENT_ID"
	envApplicationName = "APPLICATION_NAME"
	envDeploymentGroup = "DEPLOYMENT_GROUP_NAME"
)

// defaultHealthPath is the original tool's health check path.
const defaultHealthPath = "/healthcheck"

func newHookCmd(f *Factory) *cobra.Command {
	c := &cobra.Command{
		Use:   "hook",
		Short: "Commands for appspec.yml lifecycle hooks on the instances",
		Long: `Commands for the lifecycle hooks of a CodeDeploy appspec.yml, run by the
CodeDeploy agent on each instance. They read LIFECYCLE_EVENT, DEPLOYMENT_ID,
APPLICATION_NAME and DEPLOYMENT_GROUP_NAME from the agent and .oopsrc from
the bundle (run them with -C pointing at the bundle root).

The color a deployment installs is the off color when its first hook asks,
and stays that color for all the deployment's hooks.`,
		Example: `  eval "$(oops hook env)"          # OOPS_COLOR, OOPS_PORT, OOPS_COMMIT ...
  oops hook wait-healthy --timeout 2m
  oops hook switch --yes           # single-instance setups without "oops deploy"`,
		Args: noArgs,
	}
	c.AddCommand(newHookEnvCmd(f), newHookWaitHealthyCmd(f), newHookSwitchCmd(f))
	return c
}

// hookEnv is what a hook script needs to know.
type hookEnv struct {
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

// hookOptions are shared by the hook subcommands.
type hookOptions struct {
	// Host is where this instance's colors answer (tests: 127.0.0.1).
	Host string
}

func newHookEnvCmd(f *Factory) *cobra.Command {
	var asJSON bool
	opts := hookOptions{}
	c := &cobra.Command{
		Use:   "env",
		Short: "Print the deployment's color, port and commit as shell assignments",
		Long: `Print, as shell assignments for eval, the color this deployment installs
(OOPS_COLOR, OOPS_PORT), the live color (OOPS_LIVE_COLOR, OOPS_LIVE_PORT),
the commit being deployed (OOPS_COMMIT), the deployment id, and the URL of
the color's health check on this instance (OOPS_HEALTH_URL).`,
		Example: `  eval "$(oops hook env)"; systemctl restart "myapp@$OOPS_COLOR"
  oops hook env --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := f.hookEnv(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(f.IO.Out, env)
			}
			return env.writeShell(f.IO.Out)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&opts.Host, "host", "127.0.0.1", "`address` where this instance's colors answer")
	return c
}

func (e *hookEnv) writeShell(w io.Writer) error {
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
	_, err := io.WriteString(w, b.String())
	return err
}

// shellQuote quotes s for sh, only when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// hookEnv works out the deployment's color and the rest of hookEnv.
func (f *Factory) hookEnv(ctx context.Context, opts hookOptions) (*hookEnv, error) {
	c, err := f.Config()
	if err != nil {
		return nil, err
	}
	env := &hookEnv{
		DeploymentID:    f.Getenv(envDeploymentID),
		LifecycleEvent:  f.Getenv(envLifecycleEvent),
		Application:     c.ApplicationName,
		DeploymentGroup: f.Getenv(envDeploymentGroup),
	}
	if env.DeploymentGroup == "" {
		env.DeploymentGroup = c.DeploymentGroup
	}
	if app := f.Getenv(envApplicationName); app != "" && app != c.ApplicationName {
		fmt.Fprintf(f.IO.ErrOut, "oops: warning: CodeDeploy application %q is not %q from %s\n", app, c.ApplicationName, c.Path)
	}
	if env.DeploymentID != "" {
		if d, err := codeDeployer(ctx, c, f.AWSConfig, nil); err != nil {
			fmt.Fprintf(f.IO.ErrOut, "oops: warning: cannot read deployment %s: %v\n", env.DeploymentID, err)
		} else if info, err := d.Info(ctx, env.DeploymentID); err != nil {
			fmt.Fprintf(f.IO.ErrOut, "oops: warning: cannot tell which commit deployment %s installs: %v\n", env.DeploymentID, err)
		} else {
			env.Commit = codedeploy.CommitOf(c.ApplicationName, info)
			env.watched = strings.Contains(aws.ToString(info.Description), codedeploy.WatchedMarker)
		}
		if env.marker, env.etag, err = f.readHookMarker(ctx, env.DeploymentID); err != nil {
			return nil, err
		}
	}
	t, err := f.Target(ctx)
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
	env.Port = st.Color(env.Color).Port
	env.LiveColor, env.LivePort = st.Live.Color, st.Live.Port
	if env.Port == 0 {
		return nil, fmt.Errorf("find the port of %s on %s: %w: no %s=<port> tag", env.Color, t, target.ErrMisconfigured, env.Color)
	}
	if env.HealthURL, err = f.hookHealthURL(opts.Host, env.Port, st.HealthCheck); err != nil {
		return nil, err
	}
	return env, nil
}

// hookHealthURL is the color's health check on this instance: host and
// port of the color, path from health-check-url, else health-path, else
// the load balancer's health check, else /healthcheck.
func (f *Factory) hookHealthURL(host string, port int, lbCheck string) (string, error) {
	c, err := f.Config()
	if err != nil {
		return "", err
	}
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

func newHookWaitHealthyCmd(f *Factory) *cobra.Command {
	opts := hookOptions{}
	var timeout, interval time.Duration
	c := &cobra.Command{
		Use:   "wait-healthy",
		Short: "Wait until the deployment's color answers its health check on this instance",
		Long: `Poll the health check of the color this deployment installs, on this
instance (127.0.0.1:<port><path>), until it answers 2xx or 3xx (a redirect
is not followed). A non-zero exit (6) fails the lifecycle event, and so the
deployment, before any traffic moves.`,
		Example: `  oops hook wait-healthy
  oops hook wait-healthy --timeout 5m`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := f.hookEnv(cmd.Context(), opts)
			if err != nil {
				return err
			}
			return waitHealthy(cmd.Context(), f.IO.ErrOut, env.Color, env.HealthURL, timeout, interval)
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this `duration`")
	c.Flags().DurationVar(&interval, "interval", time.Second, "time between checks")
	c.Flags().StringVar(&opts.Host, "host", "127.0.0.1", "`address` where this instance's colors answer")
	return c
}

// waitHealthy polls url until it answers healthy (health.OK: 2xx or 3xx)
// or timeout passes, saying each new reason once so the agent's log shows
// how it went.
func waitHealthy(ctx context.Context, log io.Writer, color release.Color, url string, timeout, interval time.Duration) error {
	start := time.Now()
	fmt.Fprintf(log, "waiting up to %s for %s to answer %s\n", timeout, color, url)
	err := health.Wait(ctx, health.Client(5*time.Second), url, "oops-hook", timeout, interval, func(err error) {
		fmt.Fprintf(log, "  not yet: %v\n", err)
	})
	switch {
	case err == nil:
		fmt.Fprintf(log, "%s is healthy after %s\n", color, time.Since(start).Round(100*time.Millisecond))
		return nil
	case err == ctx.Err():
		return fmt.Errorf("wait for %s: %w", color, err)
	}
	return fmt.Errorf("%s did not become healthy within %s: %w: %v", color, timeout, target.ErrUnhealthy, err)
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

func (f *Factory) hookMarkerKey(id string) (string, error) {
	c, err := f.Config()
	if err != nil {
		return "", err
	}
	return c.ApplicationName + "/" + store.MetaDir + "/hooks/" + id + ".json", nil
}

// readHookMarker reads a deployment's marker; nil when there is none.
func (f *Factory) readHookMarker(ctx context.Context, id string) (*hookMarker, string, error) {
	key, err := f.hookMarkerKey(id)
	if err != nil {
		return nil, "", err
	}
	s, err := f.Store(ctx)
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
func (f *Factory) writeHookMarker(ctx context.Context, m *hookMarker, etag string) (string, error) {
	key, err := f.hookMarkerKey(m.Deployment)
	if err != nil {
		return "", err
	}
	s, err := f.Store(ctx)
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

type hookSwitchOptions struct {
	hookOptions
	Yes, DryRun, Force bool
}

func newHookSwitchCmd(f *Factory) *cobra.Command {
	opts := hookSwitchOptions{}
	c := &cobra.Command{
		Use:   "switch",
		Short: "Switch traffic to the color this deployment installed (once per deployment)",
		Long: `Switch the load balancer to the color this CodeDeploy deployment installed,
with the same health gate and verification as oops rollback, and record the
deployment's commit on that color. For single-instance setups where the
deployment was not started by a waiting "oops deploy" (CodePipeline, the
console, or oops deploy --no-wait): a waiting "oops deploy" switches itself,
so here this does nothing.

Idempotent per deployment: a second call (a retried hook) changes nothing.`,
		Example: `  oops hook switch --yes`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runHookSwitch(cmd.Context(), opts)
		},
	}
	c.Flags().BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation (hooks have no terminal: pass it)")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan, change nothing")
	c.Flags().BoolVar(&opts.Force, "force", false, "switch even if the color fails its health gate")
	c.Flags().StringVar(&opts.Host, "host", "127.0.0.1", "`address` where this instance's colors answer")
	return c
}

func (f *Factory) runHookSwitch(ctx context.Context, opts hookSwitchOptions) error {
	id := f.Getenv(envDeploymentID)
	if id == "" {
		return withHint(usageErrorf("oops hook switch: %s is not set", envDeploymentID),
			"it runs inside a CodeDeploy lifecycle hook; to switch by hand use oops rollback")
	}
	env, err := f.hookEnv(ctx, opts.hookOptions)
	if err != nil {
		return err
	}
	if env.watched {
		fmt.Fprintf(f.IO.ErrOut, "oops deploy is waiting for deployment %s and switches when it succeeds: nothing to do here\n", id)
		return nil
	}
	if env.Switched {
		fmt.Fprintf(f.IO.ErrOut, "deployment %s already switched to %s: nothing to do\n", id, env.Color)
		return nil
	}
	vt, err := verifyTimeout(0, false, f.Config)
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("CodeDeploy deployment %s", id)
	if env.LifecycleEvent != "" {
		reason += " (" + env.LifecycleEvent + ")"
	}
	sw := target.SwitchOptions{
		To: env.Color, Force: opts.Force, DryRun: opts.DryRun, VerifyTimeout: vt, Resume: true,
		Logf: f.IO.Progressf,
		Confirm: func(p *target.Plan) (bool, error) {
			if !opts.Yes {
				fmt.Fprint(f.IO.ErrOut, p.String())
			}
			return f.confirm(opts.Yes, fmt.Sprintf("Switch %s from %s to %s?", env.target, p.From, p.To))
		},
	}
	if opts.DryRun {
		res, err := target.Switch(ctx, env.target, sw)
		if err != nil {
			return err
		}
		if res.Plan == nil {
			fmt.Fprintf(f.IO.Out, "%s is already live: nothing to switch\n", env.Color)
			return nil
		}
		fmt.Fprint(f.IO.Out, res.Plan.String())
		return nil
	}
	return f.mutate(ctx, mutateOptions{Action: release.ActionSwitch, Command: "oops hook switch", Reason: reason}, func(ctx context.Context, ev *release.Event) error {
		ev.Deployment = id
		ev.Target = env.target.String()
		ev.From = release.Side{Color: env.state.Live.Color, Commit: env.state.Live.Commit}
		ev.To = release.Side{Color: env.Color, Commit: env.Commit}
		// Re-read under the lock: another instance's hook may have switched
		// since hookEnv looked.
		m, etag, err := f.readHookMarker(ctx, id)
		if err != nil {
			return err
		}
		if m != nil && m.Switched {
			fmt.Fprintf(f.IO.ErrOut, "deployment %s already switched to %s: nothing to do\n", id, m.Color)
			return nil
		}
		if m == nil {
			m = &hookMarker{Deployment: id, Color: env.Color, Commit: env.Commit, Time: f.Now().UTC()}
			if etag, err = f.writeHookMarker(ctx, m, ""); err != nil {
				return err
			}
		}
		if m.Commit != "" {
			if err := env.target.SetCommit(ctx, m.Color, m.Commit); err != nil {
				return fmt.Errorf("record commit %s on %s: %w", release.Short(m.Commit), m.Color, err)
			}
		}
		if _, err := target.Switch(ctx, env.target, sw); err != nil {
			return err
		}
		m.Switched, m.Time = true, f.Now().UTC()
		if _, err := f.writeHookMarker(ctx, m, etag); err != nil {
			return err
		}
		fmt.Fprintf(f.IO.ErrOut, "deployment %s: %s is live\n", id, m.Color)
		return nil
	})
}
