package local

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Health is the result of the last health check of a color.
type Health struct {
	Healthy bool      `json:"healthy"`
	Checked time.Time `json:"checked"`
	// Since is when Healthy last changed.
	Since     time.Time `json:"since"`
	Status    int       `json:"status,omitempty"`
	Error     string    `json:"error,omitempty"`
	LatencyMS float64   `json:"latency_ms"`
}

// newProbeClient returns the client health checks use: no keep-alive, so a
// replaced process is never reached through a stale connection.
func newProbeClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		},
		// A redirect is an answer: the app is up.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// healthURL is where a color's health check is, on loopback only.
func healthURL(port int, path string) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path
}

// probe checks one color once. Any 2xx or 3xx answer is healthy.
func probe(ctx context.Context, hc *http.Client, port int, path string) (status int, err error) {
	url := healthURL(port, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "oops-health-check")
	res, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode >= 400 {
		return res.StatusCode, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return res.StatusCode, nil
}

// unwrapURLError drops the *url.Error wrapper whose message repeats the URL.
func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok {
		if inner := u.Unwrap(); inner != nil {
			if oe, ok := inner.(*net.OpError); ok && oe.Err != nil {
				return oe.Err
			}
			return inner
		}
	}
	return err
}
