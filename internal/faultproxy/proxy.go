// Package faultproxy is a reverse proxy between the AWS SDK and moto that
// counts API calls and can fail, delay, hang or cut a chosen one, to test
// what happens when AWS (or oops) fails half-way.
package faultproxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Rule injects a fault into calls of one API action.
type Rule struct {
	// Action is the API operation, e.g. "CreateLoadBalancerListeners",
	// "ModifyListener", "CodeDeploy_20141006.CreateDeployment" (suffix
	// match on X-Amz-Target), or for S3 "PUT", "GET", "HEAD", "DELETE", "LIST".
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
}

// SignedFor reports whether r is signed (SigV4) for region.
func SignedFor(region string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		return strings.Contains(r.Header.Get("Authorization"), "/"+region+"/")
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
}

type rule struct {
	Rule
	seen, applied int
}

// New starts a proxy to upstream on a loopback port; Close stops it.
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
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &rule{Rule: r})
}

// Clear removes all rules and forgets counted calls.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules, p.calls, p.counts = nil, nil, map[string]int{}
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
	// S3 REST: a GET on a bucket (no key) with list parameters is a listing.
	if r.Method == http.MethodGet && (r.URL.Query().Has("list-type") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0) {
		return "LIST"
	}
	return r.Method
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
		if ru.Action != action && !strings.HasSuffix(ru.Action, "."+action) {
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
