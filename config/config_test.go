package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/config"
)

func write(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, config.FileName)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOriginalFileWorks: a .oopsrc of the original tool loads unchanged,
// and s3-bucket is shorthand for an s3:// store.
func TestOriginalFileWorks(t *testing.T) {
	c, err := config.Parse("/p/.oopsrc", []byte(config.Sample))
	if err != nil {
		t.Fatal(err)
	}
	if c.ELBName != "triggers-octoblu-com" || c.ApplicationName != "triggers-service" || c.DeploymentGroup != "master" || c.S3Bucket != "octoblu-deploy" {
		t.Errorf("original keys: %+v", c)
	}
	if got := c.StoreURL(); got != "s3://octoblu-deploy" {
		t.Errorf("StoreURL = %q, want s3://octoblu-deploy", got)
	}
	if c.TargetKind() != "elb" {
		t.Errorf("TargetKind = %q, want elb", c.TargetKind())
	}
}

func TestStoreURL(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ store, want string }{
		{"releases", filepath.Join(dir, "releases")},
		{"../shared/releases", filepath.Join(filepath.Dir(dir), "shared", "releases")},
		{"/var/oops", "/var/oops"},
		{"s3://bucket/team/app", "s3://bucket/team/app"},
	}
	for _, tc := range tests {
		c, err := config.Parse(filepath.Join(dir, ".oopsrc"), []byte(`{"application-name":"a","store":"`+tc.store+`","s3-bucket":"ignored"}`))
		if err != nil {
			t.Fatalf("store %q: %v", tc.store, err)
		}
		if got := c.StoreURL(); got != tc.want {
			t.Errorf("store %q: StoreURL = %q, want %q (relative to the .oopsrc folder; store wins over s3-bucket)", tc.store, got, tc.want)
		}
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := config.Find(deep)
	var nf *config.NotFoundError
	if !errors.As(err, &nf) || nf.Searched[0] != deep || !strings.Contains(err.Error(), deep) {
		t.Fatalf("Find without a file: %v; want NotFoundError naming %s", err, deep)
	}
	want := write(t, root, config.Sample)
	got, err := config.Find(deep)
	if err != nil || got != want {
		t.Errorf("Find(%s) = %q, %v; want the nearest parent's %s", deep, got, err, want)
	}
	nearer := write(t, filepath.Join(root, "a"), config.Sample)
	if got, _ := config.Find(deep); got != nearer {
		t.Errorf("Find = %q, want the nearest %s", got, nearer)
	}
}

func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "custom.json")
	_, err := config.Load(p)
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), p) || !strings.Contains(ce.Hint, `"application-name"`) {
		t.Errorf("Load(missing) = %v (hint %q); want the path and a sample", err, hintOf(err))
	}
}

func hintOf(err error) string {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Hint
	}
	return ""
}

// TestErrors: every problem a user can make, with the message that leads
// them to the fix.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string // substrings of the error, in order
		wantNot    []string
	}{
		{"empty", "  \n", []string{"/p/.oopsrc: config file is empty"}, nil},
		{"not an object", `["a"]`, []string{"must be a JSON object"}, nil},
		{"missing comma", "{\n  \"application-name\": \"a\"\n  \"store\": \"x\"\n}", []string{"/p/.oopsrc:3:3: invalid JSON: invalid character '\"' after object key:value pair"}, nil},
		{"trailing comma", "{\n  \"application-name\": \"a\",\n}", []string{"/p/.oopsrc:3:1: invalid JSON"}, nil},
		{"truncated", "{\n  \"application-name\": \"a\"", []string{"/p/.oopsrc:2:26: invalid JSON: unexpected end of JSON input"}, nil},
		{"single quotes", "{'a': 1}", []string{"/p/.oopsrc:1:2: invalid JSON"}, nil},
		{"unknown key", "{\n  \"application-name\": \"a\",\n  \"store\": \"x\",\n  \"elb_name\": \"lb\"\n}",
			[]string{`/p/.oopsrc:4:3: unknown key "elb_name" (did you mean "elb-name"?)`}, nil},
		{"unknown key, typo", `{"aplication-name": "a", "store": "x"}`,
			[]string{`unknown key "aplication-name" (did you mean "application-name"?)`, `missing required key "application-name"`}, nil},
		{"nothing close", `{"application-name": "a", "store": "x", "zzzzzzzzzzzzzzzzzz": 1}`, []string{`unknown key "zzzzzzzzzzzzzzzzzz"`}, []string{"did you mean"}},
		{"missing required, all at once", `{"elb-name": "lb"}`,
			[]string{"2 problems", `missing required key "application-name"`, `missing required key "store"`}, nil},
		{"wrong types, all at once", "{\n  \"application-name\": 5,\n  \"store\": [\"x\"],\n  \"blue-port\": \"80\"\n}",
			[]string{"3 problems", `/p/.oopsrc:2:3: "application-name" must be a string, not a number`, `/p/.oopsrc:4:3: "blue-port" must be a whole number, not a string`, `/p/.oopsrc:3:3: "store" must be a string, not an array`},
			[]string{"missing"}},
		{"unknown and missing together", `{"s3_bucket": "b"}`,
			[]string{`unknown key "s3_bucket" (did you mean "s3-bucket"?)`, `missing required key "application-name"`, `missing required key "store"`}, nil},
		{"empty values", `{"application-name": " ", "s3-bucket": ""}`, []string{`"application-name" is empty`, `"s3-bucket" is empty`}, nil},
		{"bad store", `{"application-name": "a", "store": "s3://"}`, []string{"names no bucket"}, nil},
		{"other scheme", `{"application-name": "a", "store": "gs://b"}`, []string{"only s3:// URLs and directory paths"}, nil},
		{"bucket with prefix", `{"application-name": "a", "s3-bucket": "s3://b/p"}`, []string{`"s3-bucket" takes a bucket name`}, nil},
		{"app with slash", `{"application-name": "a/b", "store": "x"}`, []string{"cannot contain /"}, nil},
		// Found by FuzzParse: a tab or newline in the name broke piped
		// output and history lines, and made odd folders and keys.
		{"app with a tab", `{"application-name": "a\tb", "store": "x"}`, []string{"control character"}, nil},
		{"app with a newline", `{"application-name": "a\nb", "store": "x"}`, []string{"control character"}, nil},
		{"key in a value is not its position", "{\"store\": \"region\",\n \"application-name\": \"a\", \"region\": 1}", []string{`/p/.oopsrc:2:27: "region" must be a string`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("/p/.oopsrc", []byte(tc.body))
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse: err = %v, want a *config.Error", err)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error\n%s\ndoes not contain (in order) %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tc.wantNot {
				if strings.Contains(msg, w) {
					t.Errorf("error\n%s\nshould not contain %q", msg, w)
				}
			}
		})
	}
}

func TestBOMAccepted(t *testing.T) {
	if _, err := config.Parse("/p/.oopsrc", append([]byte("\xef\xbb\xbf"), config.Sample...)); err != nil {
		t.Errorf("a UTF-8 BOM (added by some editors) broke parsing: %v", err)
	}
}

// TestExampleFile: the annotated example in the repository loads as is
// ("//" keys are comments), so copying it is a working start.
func TestExampleFile(t *testing.T) {
	c, err := config.Load(filepath.Join("..", ".oopsrc.example"))
	if err != nil {
		t.Fatalf(".oopsrc.example does not load: %v", err)
	}
	if c.ApplicationName == "" || c.StoreURL() != "s3://octoblu-deploy" || c.TargetKind() != "elb" {
		t.Errorf("example config = %+v", c)
	}
}

func TestCommentKeys(t *testing.T) {
	c, err := config.Parse("/p/.oopsrc", []byte(`{"//": "note", "// store": "why", "application-name": "a", "store": "x"}`))
	if err != nil || c.Store != "x" {
		t.Errorf("comment keys: %+v, %v; want them ignored", c, err)
	}
}

// TestValuesParsedAtLoad: every duration, address, port and URL template
// is checked when the file loads, so a bad one is a config error with
// file:line:column for every command, not a failure half-way through one.
func TestValuesParsedAtLoad(t *testing.T) {
	base := `{"application-name": "a", "store": "s",` + "\n"
	tests := []struct {
		name, line string
		want       string // "" : loads fine
	}{
		{"lock-ttl", `"lock-ttl": "soon"}`, `:2:1: lock-ttl "soon" is not a positive duration`},
		{"lock-ttl zero", `"lock-ttl": "0s"}`, `:2:1: lock-ttl "0s" is not a positive duration`},
		{"lock-ttl ok", `"lock-ttl": "90s"}`, ""},
		{"lock-ttl 3ns", `"lock-ttl": "3ns"}`, `:2:1: lock-ttl "3ns" is shorter than 100ms`},
		{"lock-ttl 1ms", `"lock-ttl": "1ms"}`, `:2:1: lock-ttl "1ms" is shorter than 100ms`},
		{"lock-ttl floor", `"lock-ttl": "100ms"}`, ""},
		{"verify-timeout", `"verify-timeout": "1 minute"}`, `:2:1: verify-timeout "1 minute" is not a duration`},
		{"verify-timeout negative", `"verify-timeout": "-1s"}`, `:2:1: verify-timeout "-1s" is not a duration`},
		{"verify-timeout off", `"verify-timeout": "0s"}`, ""},
		{"drain-timeout", `"drain-timeout": "30"}`, `:2:1: drain-timeout "30" is not a positive duration`},
		{"max-connections", `"max-connections": 0}`, `:2:1: max-connections 0 must be 1 or more`},
		{"max-connections type", `"max-connections": "many"}`, `max-connections`},
		{"max-connections ok", `"max-connections": 50000}`, ""},
		// Not "must be a number, not a number".
		{"max-connections fraction", `"max-connections": 1.5}`, `:2:1: "max-connections" must be a whole number, not a number`},
		{"max-connections too large", `"max-connections": 1e99}`, `:2:1: "max-connections" must be a whole number, not a number`},
		{"header-timeout", `"header-timeout": "10"}`, `:2:1: header-timeout "10" is not a positive duration`},
		{"body-timeout", `"body-timeout": "0s"}`, `:2:1: body-timeout "0s" is not a positive duration`},
		{"write-timeout", `"write-timeout": "-1m"}`, `:2:1: write-timeout "-1m" is not a positive duration`},
		{"idle-timeout", `"idle-timeout": "2"}`, `:2:1: idle-timeout "2" is not a positive duration`},
		{"timeouts ok", `"header-timeout": "5s", "body-timeout": "30s", "write-timeout": "2m", "idle-timeout": "30s"}`, ""},
		{"upstream-timeout", `"upstream-timeout": "0s"}`, `:2:1: upstream-timeout "0s" is not a positive duration`},
		{"upstream-timeout ok", `"upstream-timeout": "2m"}`, ""},
		{"trusted-proxies", `"trusted-proxies": ["10.0.0.0/8", "proxy.internal"]}`, `:2:1: trusted-proxies: "proxy.internal" is not an IP address or CIDR`},
		{"trusted-proxies host bits", `"trusted-proxies": ["10.1.2.3/8"]}`, `:2:1: trusted-proxies: "10.1.2.3/8" has bits set past its /8: write "10.0.0.0/8"`},
		{"trusted-proxies string", `"trusted-proxies": "10.0.0.0/8"}`, `:2:1: "trusted-proxies" must be an array of strings`},
		{"trusted-proxies ok", `"trusted-proxies": ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "::1"]}`, ""},
		{"trusted-proxies none", `"trusted-proxies": []}`, ""},
		{"listen", `"listen": "localhost"}`, `:2:1: listen "localhost" is not an address`},
		{"listen port", `"listen": "127.0.0.1:99999"}`, `:2:1: listen "127.0.0.1:99999" is not an address`},
		{"listen ok", `"listen": ":8080"}`, ""},
		{"preview-listen", `"preview-listen": "127.0.0.1:http:x"}`, `:2:1: preview-listen "127.0.0.1:http:x" is not an address`},
		{"metrics-listen", `"metrics-listen": "9090"}`, `:2:1: metrics-listen "9090" is not an address`},
		{"metrics-listen port", `"metrics-listen": "127.0.0.1:0"}`, `:2:1: metrics-listen "127.0.0.1:0" is not an address`},
		{"metrics-listen ok", `"metrics-listen": "127.0.0.1:9090"}`, ""},
		{"blue-port", `"blue-port": 70000}`, `:2:1: blue-port 70000 is not a TCP port`},
		{"green-port", `"green-port": -1}`, `:2:1: green-port -1 is not a TCP port`},
		{"same ports", `"blue-port": 8081, "green-port": 8081}`, `green-port 8081 is blue-port too`},
		{"min-healthy", `"min-healthy": -2}`, `:2:1: min-healthy -2 is negative`},
		{"asg one color", `"alb-name": "web", "blue-asg": "web-blue"}`, `:2:20: set both blue-asg and green-asg`},
		{"asg same", `"alb-name": "web", "blue-asg": "g", "green-asg": "g"}`, `green-asg "g" is blue-asg too`},
		{"asg not alb", `"elb-name": "web", "blue-asg": "b", "green-asg": "g"}`, `auto-scaling groups as colors need an ALB target`},
		{"asg by tag and names", `"alb-name": "web", "asg-by-tag": true, "blue-asg": "b", "green-asg": "g"}`, `both say which groups are the colors`},
		{"asg ok", `"alb-name": "web", "blue-asg": "b", "green-asg": "g", "off-capacity": 3, "min-off-capacity": 1, "keep-warm": "2h", "scale-timeout": "5m"}`, ""},
		{"asg deployment groups", `"alb-name": "web", "blue-asg": "b", "green-asg": "g", "blue-deployment-group": "b", "green-deployment-group": "g"}`, ""},
		{"alb deployment groups without asg", `"alb-name": "web", "blue-deployment-group": "b", "green-deployment-group": "g"}`, `are for colors that are separate stacks`},
		{"off-capacity", `"alb-name": "web", "asg-by-tag": true, "off-capacity": 0}`, `off-capacity 0 would deploy onto no instances`},
		{"min-off-capacity", `"alb-name": "web", "asg-by-tag": true, "min-off-capacity": -1}`, `min-off-capacity -1 is negative`},
		{"keep-warm", `"keep-warm": "soon"}`, `:2:1: keep-warm "soon" is not a positive duration`},
		{"health-path", `"health-path": "healthcheck"}`, `:2:1: health-path "healthcheck" must start with /`},
		{"health-check-url scheme", `"health-check-url": "{ip}:{port}/health"}`, `:2:1: health-check-url "{ip}:{port}/health" is not an http(s) URL`},
		{"health-check-url placeholder", `"health-check-url": "http://{host}:{port}/health"}`, `:2:1: health-check-url "http://{host}:{port}/health" has an unknown placeholder {host}`},
		{"dns health-check-url", `"dns-name": "api.example.com", "health-check-url": "https://{host}/healthcheck"}`, ""},
		{"dns health-check-url ip", `"dns-name": "api.example.com", "health-check-url": "http://{ip}:{port}/health"}`, `health-check-url "http://{ip}:{port}/health" has the placeholder {ip} (the dns target takes only {host})`},
		{"dns health-check-url no host", `"dns-name": "api.example.com", "health-check-url": "http://blue.example.com/health"}`, `has no {host}`},
		{"dns-name", `"dns-name": "api example.com"}`, `:2:1: dns-name "api example.com" has ' '`},
		{"dns-name single label", `"dns-name": "localhost"}`, `:2:1: dns-name "localhost" has a single label`},
		{"dns-name empty label", `"dns-name": "api..example.com"}`, `has an empty label`},
		{"dns-name ok", `"dns-name": "api.example.com.", "hosted-zone-id": "/hostedzone/Z0123456789ABC"}`, ""},
		{"hosted-zone-id", `"dns-name": "api.example.com", "hosted-zone-id": "example.com"}`, `hosted-zone-id "example.com" is not a Route 53 hosted zone id`},
		{"target dns without dns-name", `"target": "dns"}`, `:2:1: target "dns" needs "dns-name"`},
		{"dns deployment groups", `"dns-name": "api.example.com", "blue-deployment-group": "api-blue", "green-deployment-group": "api-green"}`, ""},
		{"dns one deployment group", `"dns-name": "api.example.com", "blue-deployment-group": "api-blue"}`, `:2:32: set both blue-deployment-group and green-deployment-group`},
		{"dns same deployment groups", `"dns-name": "api.example.com", "blue-deployment-group": "g", "green-deployment-group": "g"}`, `green-deployment-group "g" is blue-deployment-group too`},
		{"dns deployment-group", `"dns-name": "api.example.com", "deployment-group": "g"}`, `one deployment group would install on both`},
		{"elb per-color groups", `"elb-name": "web", "blue-deployment-group": "b", "green-deployment-group": "g"}`, `are for colors that are separate stacks (the dns target`},
		{"deploy-command", `"dns-name": "api.example.com", "deploy-command": ["./deploy.sh", "--stack"]}`, ""},
		{"deploy-command empty", `"dns-name": "api.example.com", "deploy-command": []}`, `:2:32: deploy-command names no program`},
		{"deploy-command string", `"dns-name": "api.example.com", "deploy-command": "./deploy.sh"}`, `"deploy-command" must be an array of strings`},
		{"deploy-command on elb", `"elb-name": "web", "deploy-command": ["./deploy.sh"]}`, `deploy-command is for the dns target`},
		{"dns-name and alb-name", `"dns-name": "api.example.com", "alb-name": "web"}`, `dns-name and alb-name/listener-arn both name a target`},
		{"health-check-url ok", `"health-check-url": "http://{ip}:{port}/healthcheck?deep=1"}`, ""},
		{"target", `"target": "nginx"}`, `:2:1: target "nginx" is not one of elb, alb, dns, local`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("/p/.oopsrc", []byte(base+tc.line))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v; want it to load", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Parse = %v, %v; want a *config.Error", c, err)
			}
			if !strings.Contains(err.Error(), tc.want) || ce.Hint == "" {
				t.Errorf("error %q (hint %q); want it to contain %q and a hint", err, ce.Hint, tc.want)
			}
		})
	}
}

// TestParsedValues: the typed values are kept, so commands never parse
// the strings again.
func TestParsedValues(t *testing.T) {
	c, err := config.Parse("/p/.oopsrc", []byte(`{"application-name": "a", "store": "s",
		"lock-ttl": "90s", "verify-timeout": "0s", "drain-timeout": "2s",
		"max-connections": 500, "header-timeout": "3s", "body-timeout": "4s", "write-timeout": "5s"}`))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Values
	if v.LockTTL != 90*time.Second || v.DrainTimeout != 2*time.Second || v.VerifyTimeout == nil || *v.VerifyTimeout != 0 {
		t.Errorf("Values = %+v; want lock 90s, drain 2s, verify 0 (set)", v)
	}
	if v.MaxConnections != 500 || v.HeaderTimeout != 3*time.Second || v.BodyTimeout != 4*time.Second || v.WriteTimeout != 5*time.Second {
		t.Errorf("Values = %+v; want max-connections 500, header 3s, body 4s, write 5s", v)
	}
	c, err = config.Parse("/p/.oopsrc", []byte(`{"application-name": "a", "store": "s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Values; v.LockTTL != 0 || v.VerifyTimeout != nil || v.DrainTimeout != 0 || v.MaxConnections != 0 || v.HeaderTimeout != 0 || v.BodyTimeout != 0 || v.WriteTimeout != 0 {
		t.Errorf("Values of an empty config = %+v; want all unset", v)
	}
}

// TestTrustedProxiesAndUpstreamTimeoutParsed: CIDRs and bare addresses
// become prefixes; unset is nil (the default, loopback), [] trusts nobody.
func TestTrustedProxiesAndUpstreamTimeoutParsed(t *testing.T) {
	tests := []struct {
		line string
		want []string // nil: unset
		set  bool
	}{
		{``, nil, false},
		{`, "trusted-proxies": []`, []string{}, true},
		{`, "trusted-proxies": ["10.0.0.0/8", "192.0.2.7", "::1"]`, []string{"10.0.0.0/8", "192.0.2.7/32", "::1/128"}, true},
	}
	for _, tc := range tests {
		c, err := config.Parse("/p/.oopsrc", []byte(`{"application-name": "a", "store": "s", "upstream-timeout": "90s"`+tc.line+`}`))
		if err != nil {
			t.Fatal(err)
		}
		got := c.Values.TrustedProxies
		if (got != nil) != tc.set || len(got) != len(tc.want) {
			t.Fatalf("%s: TrustedProxies = %v; want %v (set: %v)", tc.line, got, tc.want, tc.set)
		}
		for i, p := range got {
			if p.String() != tc.want[i] {
				t.Errorf("%s: TrustedProxies[%d] = %s, want %s", tc.line, i, p, tc.want[i])
			}
		}
		if c.Values.UpstreamTimeout != 90*time.Second {
			t.Errorf("UpstreamTimeout = %s, want 90s", c.Values.UpstreamTimeout)
		}
	}
}
