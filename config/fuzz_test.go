package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/oops-deploy/oops/config"
)

// FuzzParse feeds .oopsrc text, hostile included, to Parse: it never
// panics, returns either a config or a *config.Error (exit 2) naming the
// file, always the same answer for the same text, and a config it accepts
// holds only values the commands can use without checking again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		config.Sample,
		`{"application-name": "api", "store": ".oops", "target": "local", "listen": ":8080", "blue-port": 8081, "green-port": 8082, "command": ["./api"], "health-path": "/healthcheck", "drain-timeout": "30s", "lock-ttl": "5m", "verify-timeout": "0s"}`,
		``, `   `, `null`, `[]`, `"str"`, `{`, `{"application-name":`, `}`,
		"\xef\xbb\xbf{}",                       // a BOM
		"{\"application-name\": \"a\x00b\"}",   // NUL
		"{\"application-name\": \"\xff\xfe\"}", // invalid UTF-8
		"{\"\xff\": 1}",
		`{"application-name": "../../etc", "store": "."}`,
		`{"application-name": ".", "store": "."}`,
		`{"application-name": "a\nb", "store": "."}`,
		`{"application-name": "a\tb", "store": "s3://b"}`,
		`{"application-name": "a", "application-name": "b", "store": "x"}`, // duplicate keys
		`{"application-name": "a", "store": "s3://"}`,
		`{"application-name": "a", "s3-bucket": "b/../c"}`,
		`{"application-name": "a", "store": "x", "blue-port": 1e309}`,
		`{"application-name": "a", "store": "x", "blue-port": -1, "green-port": 65536}`,
		`{"application-name": "a", "store": "x", "blue-port": 8080, "green-port": 8080}`,
		`{"application-name": "a", "store": "x", "listen": "[::1]:99999"}`,
		`{"application-name": "a", "store": "x", "listen": ""}`,
		`{"application-name": "a", "store": "x", "target": "local", "metrics-listen": ":9090"}`,
		`{"application-name": "a", "store": "x", "metrics-listen": "[::1]:http"}`,
		`{"application-name": "a", "store": "x", "lock-ttl": "-9223372036854775808ns"}`,
		`{"application-name": "a", "store": "x", "drain-timeout": "9999999999h"}`,
		`{"application-name": "a", "store": "x", "target": "local", "max-connections": 10000, "header-timeout": "10s", "body-timeout": "1m", "write-timeout": "1m", "idle-timeout": "2m"}`,
		`{"application-name": "a", "store": "x", "max-connections": -1, "header-timeout": "0s", "body-timeout": "-5s", "write-timeout": "9999999999h"}`,
		`{"application-name": "a", "store": "x", "max-connections": 1e99}`,
		`{"application-name": "a", "store": "x", "upstream-timeout": "-1s", "trusted-proxies": ["10.0.0.0/8", "::1", "fe80::1%eth0", "1.2.3.4/33", "", null]}`,
		`{"application-name": "a", "store": "x", "trusted-proxies": ["10.1.2.3/8"]}`,
		`{"application-name": "a", "store": "x", "verify-timeout": "-1s"}`,
		`{"application-name": "a", "store": "x", "min-healthy": -2147483649}`,
		`{"application-name": "a", "store": "x", "health-check-url": "http://{ip}:{port}/{evil}"}`,
		`{"application-name": "a", "store": "x", "health-check-url": "file:///etc/passwd"}`,
		`{"application-name": "a", "store": "x", "health-path": "healthcheck"}`,
		`{"application-name": "a", "store": "x", "dns-name": "api.example.com", "hosted-zone-id": "Z0123456789", "health-check-url": "https://{host}/healthcheck"}`,
		`{"application-name": "a", "store": "x", "dns-name": "a..b", "hosted-zone-id": "/hostedzone/", "health-check-url": "http://{ip}/"}`,
		`{"application-name": "a", "store": "x", "dns-name": "api.example.com", "alb-name": "web", "target": "dns"}`,
		`{"application-name": "a", "store": "x", "dns-name": "api.example.com", "blue-deployment-group": "b", "green-deployment-group": "b", "deployment-group": "c"}`,
		`{"application-name": "a", "store": "x", "dns-name": "api.example.com", "deploy-command": ["", "x"]}`,
		`{"application-name": "a", "store": "x", "target": "ELB"}`,
		`{"application-name": "a", "store": "x", "alb-name": "w", "blue-asg": "b", "green-asg": "b", "asg-by-tag": true, "off-capacity": -1, "min-off-capacity": 1e9, "keep-warm": "0s", "scale-timeout": "x"}`,
		`{"application-name": "a", "store": "x", "command": "rm -rf /"}`,
		`{"application-name": "a", "store": "x", "hooks": {"pre-switch": ["./smoke.sh"], "on-failure": ["page", "$OOPS_REASON"]}, "hook-timeout": "1m", "notify": ["https://hooks.slack.com/services/T/B/x", "sns:arn:aws:sns:us-east-1:1:t"], "notify-timeout": "5s"}`,
		`{"application-name": "a", "store": "x", "hooks": {"pre-swich": ["x"], "post-switch": [], "on-revert": [""], "pre-deploy": "x", "": null}, "hook-timeout": "-1s"}`,
		`{"application-name": "a", "store": "x", "hooks": [1], "notify": ["ftp://x", "sns:", "sns:arn:aws:sns:::", "http://", "https://[::1", null, 5]}`,
		`{"application-name": "a", "store": "x", "notify": {"a": 1}, "notify-timeout": "9999999999h"}`,
		`{"application-name": "a", "store": "x", "require-approval": true, "approvers": ["grace", "", "a\nb", null]}`,
		`{"application-name": "a", "store": "x", "require-approval": 1, "approvers": "grace"}`,
		`{"//": {"deep": [1, 2, {"x": null}]}, "application-name": "a", "store": "x"}`,
		`{"application-name": "a", "store": "x", "elb-name": {"$ne": null}}`,
		`{"aplication-name": "a", "stor": "x"}`,
		"{\n\n\n  \"application-name\": 1,\n  \"store\": true\n}",
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		`{"application-name": "` + strings.Repeat("a", 100000) + `", "store": "x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "/srv/app/.oopsrc"
		c, err := config.Parse(path, data)
		c2, err2 := config.Parse(path, data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Parse is not deterministic: %v, then %v", err, err2)
		}
		if err != nil {
			var ce *config.Error
			if c != nil || !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), path) {
				t.Fatalf("Parse failed with %T %v (config %v): want a *config.Error at %s", err, err, c, path)
			}
			return
		}
		if c == nil || c2 == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		app := c.ApplicationName
		if strings.TrimSpace(app) == "" || strings.ContainsAny(app, `/\`) || strings.HasPrefix(app, ".") ||
			strings.ContainsFunc(app, unicode.IsControl) {
			t.Fatalf("accepted application-name %q: it names folders and keys of the store", app)
		}
		if c.StoreURL() == "" {
			t.Fatal("accepted a config without a store")
		}
		for _, p := range []int{c.BluePort, c.GreenPort} {
			if p < 0 || p > 65535 {
				t.Fatalf("accepted port %d", p)
			}
		}
		if c.BluePort != 0 && c.BluePort == c.GreenPort {
			t.Fatalf("accepted blue-port = green-port = %d", c.BluePort)
		}
		v := c.Values
		for _, p := range v.TrustedProxies {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("accepted trusted proxy %v", p)
			}
		}
		if v.LockTTL < 0 || v.DrainTimeout < 0 || v.UpstreamTimeout < 0 || (v.VerifyTimeout != nil && *v.VerifyTimeout < 0) ||
			v.MaxConnections < 0 || v.HeaderTimeout < 0 || v.BodyTimeout < 0 || v.WriteTimeout < 0 || v.IdleTimeout < 0 {
			t.Fatalf("accepted a negative duration: %+v", v)
		}
		if c.Target != "" && !slices.Contains(config.Targets, c.Target) {
			t.Fatalf("accepted target %q", c.Target)
		}
		if c.HealthPath != "" && !strings.HasPrefix(c.HealthPath, "/") {
			t.Fatalf("accepted health-path %q", c.HealthPath)
		}
		if (c.BlueDeploymentGroup == "") != (c.GreenDeploymentGroup == "") || (c.BlueDeploymentGroup != "" && c.TargetKind() != "dns") {
			t.Fatalf("accepted per-color deployment groups %q, %q on target %q", c.BlueDeploymentGroup, c.GreenDeploymentGroup, c.TargetKind())
		}
		if c.DeployCommand != nil && (len(c.DeployCommand) == 0 || strings.TrimSpace(c.DeployCommand[0]) == "") {
			t.Fatalf("accepted deploy-command %q", c.DeployCommand)
		}
		if c.TargetKind() == "dns" && c.HealthCheckURL != "" && !strings.Contains(c.HealthCheckURL, "{host}") {
			t.Fatalf("accepted health-check-url %q for the dns target", c.HealthCheckURL)
		}
		if c.DNSName != "" && (strings.ContainsAny(c.DNSName, " /:@") || !strings.Contains(c.DNSName, ".")) {
			t.Fatalf("accepted dns-name %q", c.DNSName)
		}
		for stage, args := range v.Hooks {
			if !slices.Contains(config.HookStages, stage) || len(args) == 0 || strings.TrimSpace(args[0]) == "" {
				t.Fatalf("accepted hook %q: %q", stage, args)
			}
		}
		if len(v.Notify) != len(c.Notify) || v.HookTimeout < 0 || v.NotifyTimeout < 0 || v.NotifyTimeout > config.MaxNotifyTimeout {
			t.Fatalf("notify %q parsed as %+v; timeouts %s, %s", c.Notify, v.Notify, v.HookTimeout, v.NotifyTimeout)
		}
		for _, d := range v.Notify {
			if (d.URL == "") == (d.TopicARN == "") {
				t.Fatalf("accepted destination %+v", d)
			}
		}
		for _, a := range c.Approvers {
			if strings.TrimSpace(a) == "" || !c.RequireApproval {
				t.Fatalf("accepted approvers %q (require-approval %v)", c.Approvers, c.RequireApproval)
			}
		}
		if c.MinHealthy != nil && *c.MinHealthy < 0 {
			t.Fatalf("accepted min-healthy %d", *c.MinHealthy)
		}
	})
}
