package display

import (
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

func TestTrafficNote(t *testing.T) {
	p := func(s float64) *float64 { return &s }
	tests := []struct {
		name string
		tr   target.Traffic
		want string
	}{
		{"no requests", target.Traffic{Seconds: 59.5}, "green: no requests in the last 59.5s"},
		{"fast", target.Traffic{Seconds: 60, Requests: 600, Rate: 10, P99Seconds: p(0.0032)},
			"green: 10.0 req/s, 5xx 0.0%, p99 3.2 ms (600 requests in the last 60s)"},
		// Past the slowest bucket the estimate is only a floor: saying
		// "p99 10.00 s" of requests that take a minute would mislead.
		{"past the slowest bucket", target.Traffic{Seconds: 60, Requests: 6, Rate: 0.1, P99Seconds: p(10), P99Over: true},
			"green: 0.10 req/s, 5xx 0.0%, p99 over 10 s (6 requests in the last 60s)"},
	}
	for _, tt := range tests {
		if got := TrafficNote(release.Green, &tt.tr); !strings.EqualFold(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
