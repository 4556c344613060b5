// Package health is oops's one health probe: the ELB's gate before a
// switch, the local target's gate, install wait and proxy checks, and the
// CodeDeploy hook's wait-healthy all ask the same way and judge by OK.
//
// The rule: any 2xx or 3xx answer is healthy, and a redirect is not
// followed. A 3xx proves a process answers on that port, which is what a
// gate checks (whether the app is right is verification's job); refusing
// it would, mid-incident, block a rollback to an app whose health path
// redirects (to HTTPS, or to add a trailing slash).
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// OK says whether an answer with this status code is healthy: 200 through 399.
func OK(status int) bool {
	return status >= 200 && status < 400
}

// Client returns the client probes use. timeout bounds one probe, from
// dial to the end of the headers. No keep-alive, so a replaced process is
// never reached through a stale connection; no proxy from the environment,
// since the addresses probed are local or inside the network; redirects
// are answers, not followed (see OK).
func Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get asks url once, with userAgent so the app's logs can tell probes from
// users. The body is drained and closed; the response is returned for its
// status and header (the local proxy says which color answered) whenever
// there was an answer, also an unhealthy one. The error reads
// "GET <url>: <status>" for an answer that is not OK, "GET <url>: no answer
// within <hc.Timeout>" when hc's own timeout passed, else "GET <url>: <cause>"
// (without net/http's repetition of the URL and the address).
func Get(ctx context.Context, hc *http.Client, url, userAgent string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	res, err := hc.Do(req)
	if err != nil {
		// A timeout while ctx still runs is the probe's own: name it. When
		// ctx ended, the caller's deadline or cancel is the cause.
		var ne net.Error
		if hc.Timeout > 0 && ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("GET %s: no answer within %s", url, hc.Timeout)
		}
		return nil, fmt.Errorf("GET %s: %w", url, cause(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if !OK(res.StatusCode) {
		return res, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return res, nil
}

// cause drops the *url.Error around err (its message repeats the URL) and
// a *net.OpError's "dial tcp <addr>:" (the URL names the address), leaving
// e.g. "connect: connection refused".
func cause(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}

// Wait asks url (as Get does) every interval until it answers OK (nil) or
// timeout passes (the last answer's error). notYet, when not nil, gets each new
// reason once, so a log shows how it went without repeating itself. When
// ctx ends first, Wait returns ctx.Err() itself.
func Wait(ctx context.Context, hc *http.Client, url, userAgent string, timeout, interval time.Duration, notYet func(error)) error {
	if interval <= 0 {
		interval = time.Second
	}
	deadline := time.Now().Add(timeout)
	said := ""
	for {
		_, err := Get(ctx, hc, url, userAgent)
		if err == nil {
			return nil
		}
		if s := err.Error(); s != said && notYet != nil {
			notYet(err)
		}
		said = err.Error()
		// No time for another ask: the last answer is the verdict.
		if !time.Now().Add(interval).Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
