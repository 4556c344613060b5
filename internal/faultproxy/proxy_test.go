package faultproxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/oops-deploy/oops/internal/faultproxy"
)

// recorder is a testing.TB whose failures and cleanups are recorded, so
// a test can see Verify fail without failing itself.
type recorder struct {
	testing.TB // the real test, for anything not recorded here
	errors     []string
	cleanups   []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// end runs the cleanups as the testing package would when the test ends.
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// call sends one Query-protocol request for action through p.
func call(t *testing.T, p *faultproxy.Proxy, action string) int {
	t.Helper()
	resp, err := http.Get(p.URL + "/?Action=" + action)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestVerify(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	fail := func(action string) faultproxy.Rule {
		return faultproxy.Rule{Action: action, Status: http.StatusServiceUnavailable}
	}
	for _, tt := range []struct {
		name  string
		run   func(t *testing.T, p *faultproxy.Proxy)
		fails []string // one regexp per expected failure, after the common prefix
	}{
		{name: "used rule passes", run: func(t *testing.T, p *faultproxy.Proxy) {
			p.Add(fail("Ping"))
			if got := call(t, p, "Ping"); got != http.StatusServiceUnavailable {
				t.Errorf("Ping through the rule: %d, want 503", got)
			}
		}},
		{name: "rule applied fewer than Times passes", run: func(t *testing.T, p *faultproxy.Proxy) {
			r := fail("Ping")
			r.Times = 3
			p.Add(r)
			call(t, p, "Ping")
		}},
		{name: "unused rule fails naming it", run: func(t *testing.T, p *faultproxy.Proxy) {
			p.Add(fail("Pong"))
			call(t, p, "Ping")
		}, fails: []string{`Action "Pong" Skip 0 Times 0: status 503; 0 matching calls seen; added at proxy_test.go:\d+$`}},
		{name: "rule skipped past every call fails", run: func(t *testing.T, p *faultproxy.Proxy) {
			p.Add(faultproxy.Rule{Action: "Ping", Skip: 1, Times: 1, Cut: true, After: true})
			call(t, p, "Ping")
		}, fails: []string{`Action "Ping" Skip 1 Times 1: cut after forwarding; 1 matching calls seen; added at proxy_test.go:\d+$`}},
		{name: "rule whose Match refuses every call fails", run: func(t *testing.T, p *faultproxy.Proxy) {
			r := fail("Ping")
			r.Match = faultproxy.SignedFor("eu-west-3")
			p.Add(r)
			call(t, p, "Ping")
		}, fails: []string{`Action "Ping" \(with Match\) Skip 0 Times 0: status 503; 0 matching calls seen; added at proxy_test.go:\d+$`}},
		{name: "a rule for every action is used by any call", run: func(t *testing.T, p *faultproxy.Proxy) {
			p.Add(fail("*"))
			if got := call(t, p, "Ping"); got != http.StatusServiceUnavailable {
				t.Errorf("Ping through the rule for every action: %d, want 503", got)
			}
		}},
		{name: "a rule for every action that no call meets fails", run: func(t *testing.T, p *faultproxy.Proxy) {
			r := fail("*")
			r.Match = faultproxy.SignedForService("s3")
			p.Add(r)
			call(t, p, "Ping")
		}, fails: []string{`Action "\*" \(with Match\) Skip 0 Times 0: status 503; 0 matching calls seen`}},
		{name: "optional rule never applied passes", run: func(t *testing.T, p *faultproxy.Proxy) {
			r := fail("Pong")
			r.Optional = true
			p.Add(r)
			call(t, p, "Ping")
		}},
		{name: "clear keeps the check of the rules it drops", run: func(t *testing.T, p *faultproxy.Proxy) {
			p.Add(fail("Pong"))
			p.Add(fail("Ping"))
			call(t, p, "Ping")
			p.Clear()
			if got := call(t, p, "Pong"); got != http.StatusOK {
				t.Errorf("Pong after Clear: %d, want 200 (the rule is gone)", got)
			}
		}, fails: []string{`Action "Pong" Skip 0 Times 0: status 503; 0 matching calls seen; added at proxy_test.go:\d+ \(cleared\)$`}},
		{name: "clear then a new unused rule fails twice", run: func(t *testing.T, p *faultproxy.Proxy) {
			p.Add(fail("Pong"))
			p.Clear()
			p.Add(fail("Pang"))
		}, fails: []string{`Action "Pong" .* \(cleared\)$`, `Action "Pang" .*\d$`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			p := faultproxy.NewT(rec, upstream.URL)
			tt.run(t, p)
			if len(rec.errors) != 0 {
				t.Fatalf("failed before the test ended: %q", rec.errors)
			}
			rec.end()
			if len(rec.errors) != len(tt.fails) {
				t.Fatalf("failures %q, want %d", rec.errors, len(tt.fails))
			}
			for i, want := range tt.fails {
				if !regexp.MustCompile(`^faultproxy: rule never applied: ` + want).MatchString(rec.errors[i]) {
					t.Errorf("failure %q, want it to match %q", rec.errors[i], want)
				}
			}
			// NewT closed the proxy.
			if _, err := http.Get(p.URL); err == nil {
				t.Errorf("proxy still answers after the test ended")
			}
		})
	}
}

// TestActionOfRoute53: Route 53's REST calls are named by their path.
func TestActionOfRoute53(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/2013-04-01/hostedzonesbyname?dnsname=example.com", "ListHostedZonesByName"},
		{"GET", "/2013-04-01/hostedzone/Z123/rrset", "ListResourceRecordSets"},
		{"POST", "/2013-04-01/hostedzone/Z123/rrset/", "ChangeResourceRecordSets"},
		{"GET", "/2013-04-01/change/C123", "GetChange"},
		{"GET", "/2013-04-01/healthcheck/abc-1/status", "GetHealthCheckStatus"},
		{"POST", "/2013-04-01/hostedzone", "POST"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if got := faultproxy.ActionOf(r, nil); got != tc.want {
			t.Errorf("ActionOf(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
