// Package config reads .oopsrc, found like git finds .git.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/agnivade/levenshtein"

	"github.com/oops-deploy/oops/store"
)

// FileName is the name of the config file.
const FileName = ".oopsrc"

// Config is the content of .oopsrc. Keys are kebab-case like the original
// four (elb-name, application-name, deployment-group, s3-bucket).
type Config struct {
	// The original tool's keys.
	ELBName         string `json:"elb-name,omitempty"`
	ApplicationName string `json:"application-name"`
	DeploymentGroup string `json:"deployment-group,omitempty"`
	S3Bucket        string `json:"s3-bucket,omitempty"`

	Region string `json:"region,omitempty"`
	// Store is s3://bucket[/prefix] or a directory (relative to the
	// .oopsrc folder). s3-bucket is shorthand for s3://<bucket>.
	Store string `json:"store,omitempty"`
	// Target is elb, alb, dns or local; inferred from elb-name/alb-name/dns-name when empty.
	Target string `json:"target,omitempty"`

	// Health gate: probed before a switch. {ip} and {port} are expanded.
	HealthCheckURL string `json:"health-check-url,omitempty"`
	// VerifyTimeout is how long to watch the new color after a switch (Go duration).
	VerifyTimeout string `json:"verify-timeout,omitempty"`
	// PreviewELBName is the ELB that `oops off` points at the off color.
	PreviewELBName string `json:"preview-elb-name,omitempty"`

	// ALB.
	ALBName          string `json:"alb-name,omitempty"`
	ListenerARN      string `json:"listener-arn,omitempty"`
	BlueTargetGroup  string `json:"blue-target-group,omitempty"`
	GreenTargetGroup string `json:"green-target-group,omitempty"`
	MinHealthy       *int   `json:"min-healthy,omitempty"`
	// ALB colors that are auto-scaling groups: named (blue-asg, green-asg)
	// or found by their oops:color tag (asg-by-tag). off-capacity is the
	// size a deploy gives the off group (default: the live group's
	// desired capacity); after keep-warm (default 1h) oops downscale
	// scales the old color to min-off-capacity (default 0); a rollback
	// onto a cold color waits up to scale-timeout (default 10m) for it.
	BlueASG        string `json:"blue-asg,omitempty"`
	GreenASG       string `json:"green-asg,omitempty"`
	ASGByTag       bool   `json:"asg-by-tag,omitempty"`
	OffCapacity    *int   `json:"off-capacity,omitempty"`
	MinOffCapacity *int   `json:"min-off-capacity,omitempty"`
	KeepWarm       string `json:"keep-warm,omitempty"`
	ScaleTimeout   string `json:"scale-timeout,omitempty"`

	// Route 53 (target dns): the name whose weighted records blue and
	// green are switched, and optionally its hosted zone.
	DNSName      string `json:"dns-name,omitempty"`
	HostedZoneID string `json:"hosted-zone-id,omitempty"`
	// A CodeDeploy deployment group per color, for colors that are
	// separate stacks (the dns target) instead of one deployment-group.
	BlueDeploymentGroup  string `json:"blue-deployment-group,omitempty"`
	GreenDeploymentGroup string `json:"green-deployment-group,omitempty"`
	// DeployCommand, instead, installs a release on a color's stack: run
	// in the .oopsrc folder with OOPS_COLOR, OOPS_RELEASE_FILE, ... set.
	DeployCommand []string `json:"deploy-command,omitempty"`

	// Lock.
	LockTTL string `json:"lock-ttl,omitempty"`

	// Local target (built-in proxy).
	Listen        string `json:"listen,omitempty"`
	PreviewListen string `json:"preview-listen,omitempty"`
	// MetricsListen, optional, serves Prometheus metrics of the proxy.
	MetricsListen string   `json:"metrics-listen,omitempty"`
	BluePort      int      `json:"blue-port,omitempty"`
	GreenPort     int      `json:"green-port,omitempty"`
	Command       []string `json:"command,omitempty"`
	HealthPath    string   `json:"health-path,omitempty"`
	DrainTimeout  string   `json:"drain-timeout,omitempty"`
	StateDir      string   `json:"state-dir,omitempty"`
	// The local proxy facing clients and apps: the peers whose
	// X-Forwarded-* it keeps (CIDRs or addresses), and how long an app may
	// take to start answering.
	TrustedProxies  []string `json:"trusted-proxies,omitempty"`
	UpstreamTimeout string   `json:"upstream-timeout,omitempty"`

	// Release archives: the limits publish validates and unpacking
	// enforces (package release/archive), to raise for unusual builds.
	ArchiveMaxSize    string `json:"archive-max-size,omitempty"`
	ArchiveMaxEntries *int   `json:"archive-max-entries,omitempty"`
	ArchiveMaxRatio   *int   `json:"archive-max-ratio,omitempty"`

	// The local proxy's limits on client connections (target/local).
	MaxConnections *int   `json:"max-connections,omitempty"`
	HeaderTimeout  string `json:"header-timeout,omitempty"`
	BodyTimeout    string `json:"body-timeout,omitempty"`
	WriteTimeout   string `json:"write-timeout,omitempty"`
	IdleTimeout    string `json:"idle-timeout,omitempty"`

	// Hooks are commands (argument lists, like command) run at the stages
	// of a change (HookStages), each bounded by hook-timeout.
	Hooks       map[string][]string `json:"hooks,omitempty"`
	HookTimeout string              `json:"hook-timeout,omitempty"`
	// Notify are where every event is sent: http(s):// webhooks and
	// sns:<topic-arn>, each send bounded by notify-timeout.
	Notify        []string `json:"notify,omitempty"`
	NotifyTimeout string   `json:"notify-timeout,omitempty"`
	// RequireApproval: a deploy installs, then waits for someone else's
	// oops approve before it switches; Approvers, when set, are the only
	// identities whose approval counts.
	RequireApproval bool     `json:"require-approval,omitempty"`
	Approvers       []string `json:"approvers,omitempty"`

	// Path is the file this was read from; Dir its folder.
	Path string `json:"-"`
	Dir  string `json:"-"`

	// Values are the typed values of the keys above, parsed when the file
	// loads: commands use these and never parse the strings again.
	Values Values `json:"-"`
}

// Values are the parsed durations of .oopsrc. Addresses, ports and URL
// templates are validated at load and keep their string form.
type Values struct {
	// LockTTL is lock-ttl; 0 when unset (the default applies).
	LockTTL time.Duration
	// VerifyTimeout is verify-timeout; nil when unset, 0 means "do not
	// verify".
	VerifyTimeout *time.Duration
	// DrainTimeout is drain-timeout; 0 when unset (the default applies).
	DrainTimeout time.Duration
	// TrustedProxies is trusted-proxies; nil when unset (the default
	// applies), empty when set to [] (nobody is trusted).
	TrustedProxies []netip.Prefix
	// UpstreamTimeout is upstream-timeout; 0 when unset (the default applies).
	UpstreamTimeout time.Duration
	// ArchiveMaxSize is archive-max-size in bytes, ArchiveMaxEntries and
	// ArchiveMaxRatio the other archive limits; 0 when unset (the
	// defaults apply).
	ArchiveMaxSize    int64
	ArchiveMaxEntries int
	ArchiveMaxRatio   int
	// MaxConnections is max-connections and the others the local proxy's
	// timeouts; 0 when unset (the defaults apply).
	MaxConnections                                        int
	HeaderTimeout, BodyTimeout, WriteTimeout, IdleTimeout time.Duration
	// Hooks is hooks, stage -> argument list (every stage a HookStages
	// one, every list non-empty); HookTimeout is hook-timeout, 0 when
	// unset (the default applies).
	Hooks       map[string][]string
	HookTimeout time.Duration
	// Notify is notify, parsed; NotifyTimeout is notify-timeout, 0 when
	// unset (the default applies).
	Notify        []Destination
	NotifyTimeout time.Duration
	// KeepWarm is keep-warm, ScaleTimeout scale-timeout; 0 when unset
	// (the defaults apply).
	KeepWarm, ScaleTimeout time.Duration
}

// MaxNotifyTimeout bounds notify-timeout: notifications must stay short,
// since a change waits for them.
const MaxNotifyTimeout = time.Minute

// HookStages are the stages a hook can run at, in the order a deploy
// meets them (on-revert, on-failure and post-rollback when they apply).
var HookStages = []string{"pre-deploy", "post-install", "pre-switch", "post-switch", "on-revert", "on-failure", "post-rollback"}

// Destination is one notify entry: a webhook URL or an SNS topic.
type Destination struct {
	// URL is an http:// or https:// webhook ("" for SNS); Slack is true
	// when it is a Slack incoming webhook (hooks.slack.com), which takes
	// {"text": ...} only.
	URL   string
	Slack bool
	// TopicARN is the SNS topic of sns:<topic-arn> ("" for a webhook).
	TopicARN string
}

// String is the destination as written in .oopsrc, a webhook's path and
// query left out: either may hold its secret (Slack, Discord, Mattermost
// and Teams keep it in the path).
func (d Destination) String() string {
	if d.TopicARN != "" {
		return "sns:" + d.TopicARN
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return "webhook"
	}
	u.RawQuery, u.User, u.Fragment, u.RawPath = "", nil, "", ""
	if u.Path != "" && u.Path != "/" {
		u.Path = "/..."
	}
	return u.String()
}

// Sample is printed when no .oopsrc is found, as the original tool did.
const Sample = `{
  "elb-name": "triggers-octoblu-com",
  "application-name": "triggers-service",
  "deployment-group": "master",
  "s3-bucket": "octoblu-deploy"
}`

// Error is a problem with the config file. All of them exit with code 2.
type Error struct {
	Path string
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// NotFoundError: no .oopsrc in the folder or any parent.
type NotFoundError struct {
	Searched []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no %s found in %s or any parent folder", FileName, e.Searched[0])
}

// Find looks for .oopsrc in dir and its parents.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var searched []string
	for d := abs; ; d = filepath.Dir(d) {
		searched = append(searched, d)
		p := filepath.Join(d, FileName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", &NotFoundError{Searched: searched}
		}
	}
}

// Open loads the .oopsrc a command runs with: the file named by path
// (--config, relative to wd), else the nearest one found from dir (-C,
// relative to wd) up.
func Open(path, wd, dir string) (*Config, error) {
	if path == "" {
		start := wd
		if dir != "" {
			start = dir
			if !filepath.IsAbs(dir) {
				start = filepath.Join(wd, dir)
			}
		}
		found, err := Find(start)
		if err != nil {
			return nil, err
		}
		path = found
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(wd, path)
	}
	return Load(path)
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{Path: path, Msg: "config file does not exist", Hint: "create it with `oops init`, or write one like:\n" + Sample}
		}
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates config text; path is used in messages.
// Every problem is reported at once: unknown keys (with the closest known
// key), wrongly typed keys and missing required keys, each with its
// line:column.
func Parse(path string, data []byte) (*Config, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // editors on Windows add a BOM
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{Path: path, Msg: "config file is empty", Hint: "start from:\n" + Sample}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, syntaxError(path, data, err)
	}
	if raw == nil {
		return nil, &Error{Path: path, Msg: "config must be a JSON object", Hint: "start from:\n" + Sample}
	}
	pos := keyPositions(data)
	nestedPositions(data, raw, pos, "hooks")
	nestedPositions(data, raw, pos, "notify")
	nestedPositions(data, raw, pos, "approvers")
	// A problem has a line:col where a key is to blame.
	type problem struct{ at, msg string }
	var problems []problem
	add := func(k, format string, args ...any) {
		p := problem{msg: fmt.Sprintf(format, args...)}
		if off, ok := pos[k]; ok {
			p.at = ":" + position(data, off)
		}
		problems = append(problems, p)
	}
	known := knownKeys()
	c := &Config{Path: path, Dir: filepath.Dir(path)}
	v := reflect.ValueOf(c).Elem()
	unknown, badType := false, map[string]bool{}
	for _, k := range sortedKeys(raw) {
		if strings.HasPrefix(k, "//") {
			continue // a comment, as in .oopsrc.example (JSON has no comments)
		}
		idx, ok := known[k]
		if !ok {
			unknown = true
			if s := closest(k, known); s != "" {
				add(k, "unknown key %q (did you mean %q?)", k, s)
			} else {
				add(k, "unknown key %q", k)
			}
			continue
		}
		f := v.FieldByIndex(idx)
		if err := json.Unmarshal(raw[k], f.Addr().Interface()); err != nil {
			badType[k] = true
			add(k, "%q must be %s, not %s", k, typeName(f.Type()), jsonKind(raw[k]))
		}
	}
	checkValues(c, raw, badType, add)
	_, hasApp := raw["application-name"]
	switch app := c.ApplicationName; {
	case !hasApp:
		add("", `missing required key "application-name"`)
	case badType["application-name"]:
	case strings.TrimSpace(app) == "":
		add("application-name", `"application-name" is empty`)
	case strings.ContainsFunc(app, unicode.IsControl):
		// A tab or newline would split piped output and history lines.
		add("application-name", `"application-name" %q cannot contain a control character (tab, newline, ...)`, app)
	case strings.ContainsAny(app, "/\\") || strings.HasPrefix(app, "."):
		// It is a folder of the store: <app>/<app>-<sha>.zip.
		add("application-name", `"application-name" %q cannot contain / or \ or start with a dot`, app)
	}
	_, hasStore := raw["store"]
	_, hasBucket := raw["s3-bucket"]
	switch {
	case !hasStore && !hasBucket:
		add("", `missing required key "store" (a directory or s3://bucket[/prefix]), or "s3-bucket"`)
	case hasStore && !badType["store"]:
		if c.Store == "" {
			add("store", `"store" is empty`)
		} else if msg := checkStore(c.Store); msg != "" {
			add("store", "%s", msg)
		}
	case hasBucket && !badType["s3-bucket"]:
		if c.S3Bucket == "" {
			add("s3-bucket", `"s3-bucket" is empty`)
		} else if strings.ContainsAny(c.S3Bucket, "/:") {
			add("s3-bucket", `"s3-bucket" takes a bucket name, not %q; for a key prefix use "store": "s3://bucket/prefix"`, c.S3Bucket)
		}
	}
	if len(problems) == 0 {
		return c, nil
	}
	hint := "example:\n" + Sample
	if unknown {
		hint = "known keys are listed in .oopsrc.example and the README; " + hint
	}
	if len(problems) == 1 {
		// "file:line:col: message", as compilers print it.
		return nil, &Error{Path: path + problems[0].at, Msg: problems[0].msg, Hint: hint}
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = path + p.at + ": " + p.msg
	}
	return nil, &Error{Path: path, Msg: fmt.Sprintf("%d problems:\n  %s", len(problems), strings.Join(lines, "\n  ")), Hint: hint}
}

// Targets are the values "target" takes.
var Targets = []string{"elb", "alb", "dns", "local"}

// checkValues parses every duration, address, port and URL template that
// is set (and of the right JSON type), fills c.Values, and reports each bad
// one at its key.
func checkValues(c *Config, raw map[string]json.RawMessage, badType map[string]bool, add func(k, format string, args ...any)) {
	set := func(k string) bool {
		_, ok := raw[k]
		return ok && !badType[k]
	}
	positive := func(k, v string) time.Duration {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			add(k, `%s %q is not a positive duration: write it like "30s", "1m" or "1m30s"`, k, v)
			return 0
		}
		return d
	}
	if set("lock-ttl") {
		if d := positive("lock-ttl", c.LockTTL); d > 0 && d < store.MinLockTTL {
			add("lock-ttl", `lock-ttl %q is shorter than %s: a holder could not heartbeat in time, and anyone could take its lock; write it like "30s" or "1m"`, c.LockTTL, store.MinLockTTL)
		} else {
			c.Values.LockTTL = d
		}
	}
	for _, d := range []struct {
		key string
		val string
		dst *time.Duration
	}{
		{"drain-timeout", c.DrainTimeout, &c.Values.DrainTimeout},
		{"header-timeout", c.HeaderTimeout, &c.Values.HeaderTimeout},
		{"body-timeout", c.BodyTimeout, &c.Values.BodyTimeout},
		{"write-timeout", c.WriteTimeout, &c.Values.WriteTimeout},
		{"idle-timeout", c.IdleTimeout, &c.Values.IdleTimeout},
		{"upstream-timeout", c.UpstreamTimeout, &c.Values.UpstreamTimeout},
		{"hook-timeout", c.HookTimeout, &c.Values.HookTimeout},
		{"notify-timeout", c.NotifyTimeout, &c.Values.NotifyTimeout},
		{"keep-warm", c.KeepWarm, &c.Values.KeepWarm},
		{"scale-timeout", c.ScaleTimeout, &c.Values.ScaleTimeout},
	} {
		if set(d.key) {
			*d.dst = positive(d.key, d.val)
		}
	}
	if d := c.Values.NotifyTimeout; d > MaxNotifyTimeout {
		add("notify-timeout", `notify-timeout %q is longer than %s: every change waits for its notifications that long when a destination is down; write it like "5s"`, c.NotifyTimeout, MaxNotifyTimeout)
		c.Values.NotifyTimeout = 0
	}
	if set("trusted-proxies") {
		ps := make([]netip.Prefix, 0, len(c.TrustedProxies))
		for _, v := range c.TrustedProxies {
			p, msg := parsePrefix(v)
			if msg != "" {
				add("trusted-proxies", "trusted-proxies: %q %s", v, msg)
				continue
			}
			ps = append(ps, p)
		}
		c.Values.TrustedProxies = ps
	}
	if set("verify-timeout") {
		if d, err := time.ParseDuration(c.VerifyTimeout); err != nil || d < 0 {
			add("verify-timeout", `%s %q is not a duration: write it like "30s" or "2m" ("0s": no verification)`, "verify-timeout", c.VerifyTimeout)
		} else {
			c.Values.VerifyTimeout = &d
		}
	}
	for _, k := range []string{"listen", "preview-listen"} {
		v := c.Listen
		if k == "preview-listen" {
			v = c.PreviewListen
		}
		if set(k) && !validAddress(v) {
			add(k, `%s %q is not an address: write it like "127.0.0.1:8080" or ":8080"`, k, v)
		}
	}
	if set("metrics-listen") && !validAddress(c.MetricsListen) {
		add("metrics-listen", `%s %q is not an address: write it like "127.0.0.1:9090" or ":9090"`, "metrics-listen", c.MetricsListen)
	}
	ports := map[string]int{"blue-port": c.BluePort, "green-port": c.GreenPort}
	for _, k := range []string{"blue-port", "green-port"} {
		if set(k) && (ports[k] <= 0 || ports[k] > 65535) {
			add(k, "%s %d is not a TCP port: use 1 to 65535", k, ports[k])
		}
	}
	if set("blue-port") && set("green-port") && c.BluePort == c.GreenPort {
		add("green-port", "%s %d is blue-port too: give each color its own port", "green-port", c.GreenPort)
	}
	if set("min-healthy") && c.MinHealthy != nil && *c.MinHealthy < 0 {
		add("min-healthy", "%s %d is negative: use 0 or more", "min-healthy", *c.MinHealthy)
	}
	checkASG(c, set, add)
	if set("health-path") && !strings.HasPrefix(c.HealthPath, "/") {
		add("health-path", `%s %q must start with /, like "/healthcheck"`, "health-path", c.HealthPath)
	}
	if set("dns-name") {
		if msg := checkDNSName(c.DNSName); msg != "" {
			add("dns-name", `dns-name %q %s: write the name clients resolve, like "api.example.com"`, c.DNSName, msg)
		}
	}
	if set("hosted-zone-id") && !zoneIDRE.MatchString(c.HostedZoneID) {
		add("hosted-zone-id", `hosted-zone-id %q is not a Route 53 hosted zone id: write it like "Z0123456789ABCDEFGHIJ" (or leave it out: oops finds the zone from dns-name)`, c.HostedZoneID)
	}
	if set("target") && c.Target == "dns" && c.DNSName == "" {
		add("target", `target "dns" needs "dns-name": the name whose weighted records blue and green oops switches, like "api.example.com"`)
	}
	if set("dns-name") && (c.ALBName != "" || c.ListenerARN != "") && !set("target") {
		add("dns-name", "dns-name and alb-name/listener-arn both name a target: keep one, or say which with \"target\"")
	}
	if bg, gg := set("blue-deployment-group"), set("green-deployment-group"); bg || gg {
		at := "blue-deployment-group"
		if !bg {
			at = "green-deployment-group"
		}
		switch {
		case bg != gg || c.BlueDeploymentGroup == "" || c.GreenDeploymentGroup == "":
			add(at, "set both blue-deployment-group and green-deployment-group: a release goes to the group of the color it is installed on")
		case c.BlueDeploymentGroup == c.GreenDeploymentGroup:
			add("green-deployment-group", "green-deployment-group %q is blue-deployment-group too: give each color's stack its own group (colors that share instances use deployment-group)", c.GreenDeploymentGroup)
		case c.DeploymentGroup != "":
			add(at, "blue-deployment-group/green-deployment-group and deployment-group both say where releases go: keep one")
		case c.TargetKind() != "dns" && !c.UsesASG():
			add(at, "blue-deployment-group and green-deployment-group are for colors that are separate stacks (the dns target, or an ALB whose colors are auto-scaling groups: blue-asg/green-asg); a load balancer's colors share instances and use deployment-group")
		}
	}
	if set("deploy-command") {
		switch {
		case len(c.DeployCommand) == 0 || strings.TrimSpace(c.DeployCommand[0]) == "":
			add("deploy-command", `deploy-command names no program: write it like ["./deploy.sh"] or ["make", "deploy"]`)
		case c.TargetKind() != "dns":
			add("deploy-command", "deploy-command is for the dns target, whose colors are separate stacks")
		case c.BlueDeploymentGroup != "":
			add("deploy-command", "deploy-command and blue-deployment-group/green-deployment-group both say how releases are installed: keep one")
		}
	}
	if c.TargetKind() == "dns" && c.DeploymentGroup != "" {
		add("deployment-group", "the dns target's colors are separate stacks: one deployment group would install on both; set blue-deployment-group and green-deployment-group instead")
	}
	if set("health-check-url") {
		dns := c.TargetKind() == "dns"
		if msg := checkHealthURL(c.HealthCheckURL, dns); msg != "" {
			like := `write it like "http://{ip}:{port}/healthcheck" ({ip}: each instance's private address, {port}: the color's port)`
			if dns {
				like = `write it like "https://{host}/healthcheck" ({host}: each value of the color's record: address, CNAME target or alias name)`
			}
			add("health-check-url", `%s %q %s: %s`, "health-check-url", c.HealthCheckURL, msg, like)
		}
	}
	if set("archive-max-size") {
		if n, ok := parseSize(c.ArchiveMaxSize); ok {
			c.Values.ArchiveMaxSize = n
		} else {
			add("archive-max-size", `%s %q is not a size: write it like "8GiB", "500MB" or a number of bytes`, "archive-max-size", c.ArchiveMaxSize)
		}
	}
	for _, n := range []struct {
		key      string
		val, dst *int
	}{
		{"max-connections", c.MaxConnections, &c.Values.MaxConnections},
		{"archive-max-entries", c.ArchiveMaxEntries, &c.Values.ArchiveMaxEntries},
		{"archive-max-ratio", c.ArchiveMaxRatio, &c.Values.ArchiveMaxRatio},
	} {
		switch {
		case !set(n.key) || n.val == nil:
		case *n.val < 1:
			add(n.key, "%s %d must be 1 or more", n.key, *n.val)
		default:
			*n.dst = *n.val
		}
	}
	if set("hooks") {
		checkHooks(c, add)
	}
	if set("notify") {
		for i, v := range c.Notify {
			d, msg := parseDestination(v)
			if msg != "" {
				add(fmt.Sprintf("notify[%d]", i), "notify: %q %s", v, msg)
				continue
			}
			c.Values.Notify = append(c.Values.Notify, d)
		}
	}
	if set("approvers") {
		for i, a := range c.Approvers {
			if strings.TrimSpace(a) == "" || strings.ContainsFunc(a, unicode.IsControl) {
				add(fmt.Sprintf("approvers[%d]", i), `approvers: %q is not an identity: write the AWS caller ARN or the git user.name as oops history shows them ("arn:aws:sts::123456789012:assumed-role/Release/*" takes any session of that role)`, a)
			}
		}
		if !c.RequireApproval && !badType["require-approval"] {
			add("approvers", `approvers is set but require-approval is not true: nothing would ask for an approval; add "require-approval": true`)
		}
	}
	if set("target") && !slices.Contains(Targets, c.Target) {
		add("target", "%s %q is not one of %s", "target", c.Target, strings.Join(Targets, ", "))
	}
}

// checkHooks validates hooks: known stages, each a non-empty argument
// list whose program is named; a problem is reported at its stage.
func checkHooks(c *Config, add func(k, format string, args ...any)) {
	hooks := map[string][]string{}
	for _, stage := range sortedKeys(c.Hooks) {
		args := c.Hooks[stage]
		at := "hooks/" + stage
		switch {
		case !slices.Contains(HookStages, stage):
			add(at, "hooks: unknown stage %q: the stages are %s", stage, strings.Join(HookStages, ", "))
		case len(args) == 0 || strings.TrimSpace(args[0]) == "":
			add(at, `hooks: %s names no program: write it like ["./notify.sh", "--stage", "%s"]`, stage, stage)
		case slices.ContainsFunc(args, func(a string) bool { return strings.ContainsRune(a, 0) }):
			add(at, "hooks: %s has an argument with a NUL byte", stage)
		default:
			hooks[stage] = args
		}
	}
	c.Values.Hooks = hooks
}

// parseDestination reads one notify entry; the message says what is
// wrong, "" when fine.
func parseDestination(v string) (Destination, string) {
	const like = `write it like "https://hooks.example.com/oops" or "sns:arn:aws:sns:us-east-1:123456789012:deploys"`
	if arn, ok := strings.CutPrefix(v, "sns:"); ok {
		// arn:partition:sns:region:account:name
		parts := strings.Split(arn, ":")
		if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] != "sns" || parts[3] == "" || parts[4] == "" || parts[5] == "" {
			return Destination{}, "is not an SNS topic ARN: " + like
		}
		return Destination{TopicARN: arn}, ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return Destination{}, "is neither an http(s) URL nor sns:<topic-arn>: " + like
	}
	return Destination{URL: v, Slack: strings.EqualFold(u.Hostname(), "hooks.slack.com")}, ""
}

// nestedPositions adds to pos where each member of the object (or element
// of the array) at top-level key k starts, as "k/member" (or "k[i]"), so
// a problem inside it is reported at its own line:column.
func nestedPositions(data []byte, raw map[string]json.RawMessage, pos map[string]int64, k string) {
	start, ok := pos[k]
	if _, set := raw[k]; !ok || !set {
		return
	}
	colon := bytes.IndexByte(data[start+1:], ':')
	if colon < 0 {
		return
	}
	base := start + 1 + int64(colon) + 1
	for base < int64(len(data)) && strings.ContainsRune(" \t\r\n", rune(data[base])) {
		base++
	}
	dec := json.NewDecoder(bytes.NewReader(data[base:]))
	t, err := dec.Token()
	if err != nil {
		return
	}
	switch t {
	case json.Delim('{'):
		for name, off := range keyPositions(data[base:]) {
			pos[k+"/"+name] = base + off
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			off := dec.InputOffset()
			for off < int64(len(data[base:])) && strings.ContainsRune(" \t\r\n,", rune(data[base+off])) {
				off++
			}
			pos[fmt.Sprintf("%s[%d]", k, i)] = base + off
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return
			}
		}
	}
}

// parseSize reads a positive byte count like "8GiB", "500 MB" or "1048576".
func parseSize(s string) (int64, bool) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, false
	}
	return n * mult, true
}

// parsePrefix reads a CIDR ("10.0.0.0/8") or an address ("192.0.2.7",
// a /32 or /128); the message says what is wrong, "" when fine.
func parsePrefix(s string) (netip.Prefix, string) {
	const like = `write it like "10.0.0.0/8", "fd00::/8" or "192.0.2.7"`
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, "is not an IP address or CIDR: " + like
		}
		if m := p.Masked(); m != p {
			return p, fmt.Sprintf("has bits set past its /%d: write %q", p.Bits(), m.String())
		}
		return p, ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, "is not an IP address or CIDR: " + like
	}
	return netip.PrefixFrom(a, a.BitLen()), ""
}

// validAddress accepts host:port with a numeric port (1-65535); the host
// may be empty (every interface).
func validAddress(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n <= 65535
}

// zoneIDRE is a hosted zone id, with or without /hostedzone/.
var zoneIDRE = regexp.MustCompile(`^(/hostedzone/)?Z[0-9A-Z]{1,32}$`)

// checkDNSName validates dns-name; "" when fine.
func checkDNSName(name string) string {
	n := strings.TrimSuffix(name, ".")
	if len(n) > 253 {
		return "is longer than 253 characters"
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return "has a single label"
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "has an empty label or one longer than 63 characters"
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Sprintf("has %q, which is not a letter, digit, - or _", r)
			}
		}
	}
	return ""
}

// checkHealthURL validates a health-check-url template; "" when fine. The
// dns target takes {host}, the others {ip} and {port}.
func checkHealthURL(tmpl string, dns bool) string {
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "has a { without }"
		}
		switch p := rest[i : i+j+1]; {
		case dns && p != "{host}":
			return "has the placeholder " + p + " (the dns target takes only {host})"
		case !dns && p != "{ip}" && p != "{port}":
			return "has an unknown placeholder " + p + " (only {ip} and {port}; {host} is the dns target's)"
		}
		rest = rest[i+j+1:]
	}
	u, err := url.Parse(strings.NewReplacer("{ip}", "127.0.0.1", "{port}", "80", "{host}", "blue.example.com").Replace(tmpl))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "is not an http(s) URL"
	}
	if dns && !strings.Contains(tmpl, "{host}") {
		return "has no {host}: the dns target probes each color's record value there"
	}
	return ""
}

// checkStore validates the "store" value; "" when fine.
func checkStore(s string) string {
	if rest, ok := strings.CutPrefix(s, "s3://"); ok {
		if b, _, _ := strings.Cut(rest, "/"); b == "" {
			return fmt.Sprintf(`"store" %q names no bucket: use s3://bucket[/prefix]`, s)
		}
		return ""
	}
	if i := strings.Index(s, "://"); i > 0 {
		return fmt.Sprintf(`"store" %q: only s3:// URLs and directory paths are supported`, s)
	}
	return ""
}

func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// keyPositions finds where each top-level key starts (byte offset of its
// opening quote), for messages.
func keyPositions(data []byte) map[string]int64 {
	pos := map[string]int64{}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return pos
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return pos
		}
		k, _ := t.(string)
		end := dec.InputOffset()
		start := int64(bytes.LastIndexByte(data[:end-1], '"'))
		for start > 0 && data[start-1] == '\\' { // an escaped quote inside the key
			start = int64(bytes.LastIndexByte(data[:start-1], '"'))
		}
		if _, dup := pos[k]; !dup && start >= 0 {
			pos[k] = start
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return pos
		}
	}
	return pos
}

// StoreURL is the store location: "s3://bucket[/prefix]" or an absolute
// directory.
func (c *Config) StoreURL() string {
	s := c.Store
	if s == "" && c.S3Bucket != "" {
		return "s3://" + c.S3Bucket
	}
	if strings.HasPrefix(s, "s3://") {
		return s
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(c.Dir, s)
	}
	return s
}

// TargetKind is the configured or inferred target: elb, alb, dns, local or "".
func (c *Config) TargetKind() string {
	switch {
	case c.Target != "":
		return c.Target
	case c.ALBName != "" || c.ListenerARN != "":
		return "alb"
	case c.DNSName != "":
		return "dns"
	case c.ELBName != "":
		return "elb"
	}
	return ""
}

func knownKeys() map[string][]int {
	m := map[string][]int{}
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			m[name] = t.Field(i).Index
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func closest(k string, known map[string][]int) string {
	best, bestD := "", 1<<30
	norm := strings.ReplaceAll(strings.ToLower(k), "_", "-")
	for cand := range known {
		d := levenshtein.ComputeDistance(norm, cand)
		if d < bestD || (d == bestD && cand < best) {
			best, bestD = cand, d
		}
	}
	if bestD <= max(3, len(k)/3) {
		return best
	}
	return ""
}

func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int:
		return "a whole number" // 1.5 and 1e99 are numbers too
	case reflect.Slice:
		return "an array of strings"
	case reflect.Map:
		return "an object of argument lists"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

func syntaxError(path string, data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := se.Offset - 1 // Offset counts the offending byte
		if strings.Contains(se.Error(), "unexpected end") {
			off = int64(len(data)) // ended early: point past the end
		}
		return &Error{Path: path + ":" + position(data, off), Msg: "invalid JSON: " + se.Error(), Hint: "JSON needs double quotes, commas between entries and none after the last"}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &Error{Path: path, Msg: "config must be a JSON object, not " + te.Value, Hint: "start from:\n" + Sample}
	}
	return &Error{Path: path, Msg: "invalid JSON: " + err.Error()}
}

// position turns a byte offset into "line:column" (1-based).
func position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("%d:%d", line, col)
}

// UsesASG says whether the colors are auto-scaling groups (ALB only).
func (c *Config) UsesASG() bool {
	return c.TargetKind() == "alb" && (c.BlueASG != "" || c.GreenASG != "" || c.ASGByTag)
}

// checkASG reports auto-scaling group keys that cannot work together.
func checkASG(c *Config, set func(string) bool, add func(k, format string, args ...any)) {
	if bg, gg := set("blue-asg"), set("green-asg"); bg || gg {
		at := "blue-asg"
		if !bg {
			at = "green-asg"
		}
		switch {
		case bg != gg || c.BlueASG == "" || c.GreenASG == "":
			add(at, "set both blue-asg and green-asg (or neither, with \"asg-by-tag\": true to find the groups by their oops:color tag)")
		case c.BlueASG == c.GreenASG:
			add("green-asg", "green-asg %q is blue-asg too: give each color its own auto-scaling group", c.GreenASG)
		case c.ASGByTag:
			add(at, "blue-asg/green-asg and asg-by-tag both say which groups are the colors: keep one")
		}
	}
	if (c.BlueASG != "" || c.ASGByTag) && c.TargetKind() != "alb" {
		k := "blue-asg"
		if c.ASGByTag {
			k = "asg-by-tag"
		}
		add(k, "auto-scaling groups as colors need an ALB target (alb-name or listener-arn), whose target groups they are attached to")
	}
	for _, k := range []struct {
		key string
		v   *int
	}{{"off-capacity", c.OffCapacity}, {"min-off-capacity", c.MinOffCapacity}} {
		if set(k.key) && k.v != nil && *k.v < 0 {
			add(k.key, "%s %d is negative: use 0 or more", k.key, *k.v)
		}
	}
	if set("off-capacity") && c.OffCapacity != nil && *c.OffCapacity == 0 {
		add("off-capacity", "off-capacity 0 would deploy onto no instances: use 1 or more, or leave it out to match the live group")
	}
}
