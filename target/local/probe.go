package local

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/oops-deploy/oops/internal/health"
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

// healthURL is where a color's health check is, on loopback only.
func healthURL(port int, path string) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path
}

// probe checks one color once, by health's rule (2xx or 3xx, a redirect
// not followed); status is 0 when nothing answered.
func probe(ctx context.Context, hc *http.Client, port int, path string) (status int, err error) {
	res, err := health.Get(ctx, hc, healthURL(port, path), userAgent)
	if res != nil {
		status = res.StatusCode
	}
	return status, err
}

// userAgent tells the app's logs health checks from users.
const userAgent = "oops-health-check"
