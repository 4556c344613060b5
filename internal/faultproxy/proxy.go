// Package faultproxy is a reverse proxy between the AWS SDK and moto that
// counts API calls and can fail, delay, hang or cut a chosen one, to test
// what happens when AWS (or oops) fails half-way.
package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rule injects a fault into calls of one API action.
type Rule struct {
	// Action is the API operation, e.g. "CreateLoadBalancerListeners",
	// "ModifyListener", "CodeDeploy_20141006.CreateDeployment" (suffix
	// match on X-Amz-Target), or for S3 "PUT", "GET", "HEAD", "DELETE", "LIST".
	// "*" matches every action: one rule for a whole service that is down
	// or elsewhere (narrowed with Match), used as soon as any call meets it.
	Action string
	// Skip lets this many matching calls through before the rule applies.
	Skip int
	// Times limits how often the rule applies (0: always).
	Times int
	// Status and Body form the injected error response (Status 0: pass through).
	Status int
	Body   string
	// Delay holds the call before it is forwarded (or failed).
	Delay time.Duration
	// Late forwards a delayed call even when its caller hung up meanwhile,
	// as AWS acts on a request that left the caller just before it stalled
	// or was cancelled.
	Late bool
	// Cut closes the connection without answering, after forwarding the
	// call when After is true (the change happens, the caller never hears).
	Cut   bool
	After bool
	// Hit, when set, receives the action each time the rule applies.
	Hit chan<- string
	// Match, when set, limits the rule to the requests it accepts (e.g.
	// those signed for one region).
	Match func(r *http.Request) bool
	// Header is added to the injected error response (e.g. S3's
	// x-amz-bucket-region on a redirect).
	Header http.Header
	// Optional lets the rule never apply without Verify failing the test.
	// Only for a call that genuinely may or may not happen (a retry that
	// depends on timing); say why where it is set. A rule that is simply
	// never reached is dead, or its test no longer drives the path it names.
	Optional bool
}

// SignedFor reports whether r is signed (SigV4) for region.
func SignedFor(region string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		return strings.Contains(r.Header.Get("Authorization"), "/"+region+"/")
	}
}

// SignedForService reports whether r is signed (SigV4) for an AWS service
// ("s3", "elasticloadbalancing", ...).
func SignedForService(service string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		return strings.Contains(r.Header.Get("Authorization"), "/"+service+"/aws4_request")
	}
}

// Proxy forwards to an upstream AWS endpoint.
type Proxy struct {
	URL    string
	server *httptest.Server
	rp     *httputil.ReverseProxy

	mu     sync.Mutex
	rules  []*rule
	calls  []string
	counts map[string]int
	// cleared holds what Clear dropped unapplied, so that Verify still
	// reports a rule that a test cleared between phases.
	cleared []string
}

type rule struct {
	Rule
	seen, applied int
	at            string // file:line of the Add, to find the stub that went unused
}

// String names the rule for a failure: what it matches, Skip, Times,
// what it injects, how many matching calls it saw and where it was added.
func (r *rule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Action %q", r.Action)
	if r.Match != nil {
		b.WriteString(" (with Match)")
	}
	fmt.Fprintf(&b, " Skip %d Times %d", r.Skip, r.Times)
	switch {
	case r.Cut && r.After:
		b.WriteString(": cut after forwarding")
	case r.Cut:
		b.WriteString(": cut")
	case r.Status != 0:
		fmt.Fprintf(&b, ": status %d", r.Status)
	}
	if r.Delay > 0 {
		fmt.Fprintf(&b, ", delay %s", r.Delay)
	}
	fmt.Fprintf(&b, "; %d matching calls seen; added at %s", r.seen, r.at)
	return b.String()
}

// NewT is New for a test: when t ends the proxy is closed and Verify
// fails t for each rule that never applied.
func NewT(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p := New(upstream)
	t.Cleanup(func() {
		t.Helper()
		p.Close()
		p.Verify(t)
	})
	return p
}

// New starts a proxy to upstream on a loopback port; Close stops it.
// Tests use NewT, or call Verify: a rule that never applies tests nothing.
func New(upstream string) *Proxy {
	u, err := url.Parse(upstream)
	if err != nil {
		panic(err)
	}
	p := &Proxy{rp: httputil.NewSingleHostReverseProxy(u), counts: map[string]int{}}
	p.server = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.server.URL
	return p
}

// Close stops the proxy.
func (p *Proxy) Close() { p.server.CloseClientConnections(); p.server.Close() }

// Add installs a rule.
func (p *Proxy) Add(r Rule) {
	at := "unknown"
	if _, file, line, ok := runtime.Caller(1); ok {
		at = fmt.Sprintf("%s:%d", filepath.Base(file), line)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &rule{Rule: r, at: at})
}

// Clear removes all rules and forgets counted calls. The rules it drops
// unapplied are kept for Verify: clearing between phases of a test must
// not hide a stub of the first phase that never applied.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleared = append(p.cleared, p.unusedLocked(" (cleared)")...)
	p.rules, p.calls, p.counts = nil, nil, map[string]int{}
}

// Unused describes each rule that never applied and is not Optional,
// including those Clear dropped, in the order they were added.
func (p *Proxy) Unused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(append([]string(nil), p.cleared...), p.unusedLocked("")...)
}

func (p *Proxy) unusedLocked(suffix string) []string {
	var out []string
	for _, r := range p.rules {
		if r.applied == 0 && !r.Optional {
			out = append(out, r.String()+suffix)
		}
	}
	return out
}

// Verify fails t once for each rule Unused reports.
func (p *Proxy) Verify(t testing.TB) {
	t.Helper()
	for _, u := range p.Unused() {
		t.Errorf("faultproxy: rule never applied: %s", u)
	}
}

// Calls returns the actions seen, in order.
func (p *Proxy) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// Count returns how many calls of action were seen ("" counts all).
func (p *Proxy) Count(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if action == "" {
		return len(p.calls)
	}
	return p.counts[action]
}

// ActionOf names the API operation of a request.
func ActionOf(r *http.Request, body []byte) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return t[strings.LastIndex(t, ".")+1:]
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			return v.Get("Action")
		}
	}
	if op := route53Action(r); op != "" {
		return op
	}
	// S3 REST: a GET on a bucket (no key) with list parameters is a listing.
	if r.Method == http.MethodGet && (r.URL.Query().Has("list-type") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0) {
		return "LIST"
	}
	return r.Method
}

// route53Action names the Route 53 REST operations the dns target calls
// (their path says the operation; there is no Action parameter), "" for
// any other request.
func route53Action(r *http.Request) string {
	rest, ok := strings.CutPrefix(r.URL.Path, "/2013-04-01/")
	if !ok {
		return ""
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case parts[0] == "hostedzonesbyname":
		return "ListHostedZonesByName"
	case parts[0] == "change" && len(parts) == 2:
		return "GetChange"
	case parts[0] == "hostedzone" && len(parts) == 3 && parts[2] == "rrset" && r.Method == http.MethodPost:
		return "ChangeResourceRecordSets"
	case parts[0] == "hostedzone" && len(parts) == 3 && parts[2] == "rrset":
		return "ListResourceRecordSets"
	case parts[0] == "healthcheck" && len(parts) == 3 && parts[2] == "status":
		return "GetHealthCheckStatus"
	}
	return ""
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	action := ActionOf(r, body)

	p.mu.Lock()
	p.calls = append(p.calls, action)
	p.counts[action]++
	var hit *rule
	for _, ru := range p.rules {
		if ru.Action != "*" && ru.Action != action && !strings.HasSuffix(ru.Action, "."+action) {
			continue
		}
		if ru.Match != nil && !ru.Match(r) {
			continue
		}
		ru.seen++
		if ru.seen <= ru.Skip || (ru.Times > 0 && ru.applied >= ru.Times) {
			continue
		}
		ru.applied++
		hit = ru
		break
	}
	p.mu.Unlock()
	if hit == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	if hit.Hit != nil {
		hit.Hit <- action
	}
	if hit.Late {
		// Read the body now: the caller's connection may be gone later.
		body, _ := io.ReadAll(r.Body)
		r = r.Clone(context.WithoutCancel(r.Context()))
		r.Body = io.NopCloser(bytes.NewReader(body))
		time.Sleep(hit.Delay)
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	if hit.Delay > 0 {
		select {
		case <-time.After(hit.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case hit.Cut:
		if hit.After {
			p.rp.ServeHTTP(httptest.NewRecorder(), r)
		}
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case hit.Status != 0:
		for k, v := range hit.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(hit.Status)
		io.WriteString(w, hit.Body)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// QueryError is an AWS Query-protocol error body (ELB, ELBv2, EC2, STS).
func QueryError(code, msg string) string {
	return `<ErrorResponse><Error><Type>Sender</Type><Code>` + code + `</Code><Message>` + msg + `</Message></Error><RequestId>fault</RequestId></ErrorResponse>`
}
