package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// script is a Counter that answers each read with the next reading: the
// bake's verdict then depends on the readings, never on timing.
type script struct {
	reads []reading
	i     int
}

type reading struct {
	reqs, errs uint64
	slow       uint64 // of reqs, took more than a second
	err        error
}

var bounds = []float64{0.1, 1}

func (s *script) Counts(context.Context, release.Color) (*target.Counts, error) {
	r := s.reads[min(s.i, len(s.reads)-1)]
	s.i++
	if r.err != nil {
		return nil, r.err
	}
	return &target.Counts{Requests: r.reqs, ServerErrors: r.errs, Bounds: bounds,
		Buckets: []uint64{r.reqs - r.slow, r.reqs - r.slow, r.reqs}}, nil
}

func ptr[T any](v T) *T { return &v }

func TestBake(t *testing.T) {
	base := Options{Interval: time.Millisecond, FailureLimit: 2, MaxErrorRate: ptr(0.02), MaxP99: 800 * time.Millisecond, MinRequests: ptr(10)}
	tests := []struct {
		name    string
		bake    time.Duration
		reads   []reading
		verdict string
		failed  bool
		worst   string
	}{
		{"healthy passes", 3 * time.Millisecond, []reading{{0, 0, 0, nil}, {100, 0, 0, nil}, {200, 1, 0, nil}, {300, 1, 0, nil}}, release.VerdictPass, false, "5xx 1.0% of 100, p99 99ms"},
		{"errors over the limit twice revert", 10 * time.Millisecond, []reading{{0, 0, 0, nil}, {100, 35, 0, nil}, {200, 70, 0, nil}}, release.VerdictFail, true, "5xx 35.0% of 100"},
		{"one bad measurement is not enough", 3 * time.Millisecond, []reading{{0, 0, 0, nil}, {100, 35, 0, nil}, {200, 35, 0, nil}, {300, 35, 0, nil}}, release.VerdictPass, false, "5xx 35.0% of 100"},
		{"latency regression reverts", 10 * time.Millisecond, []reading{{0, 0, 0, nil}, {100, 0, 50, nil}, {200, 0, 100, nil}}, release.VerdictFail, true, "p99 1s"},
		{"no traffic is inconclusive", 3 * time.Millisecond, []reading{{5, 0, 0, nil}}, release.VerdictInconclusive, false, ""},
		{"below min-requests is inconclusive", 3 * time.Millisecond, []reading{{0, 0, 0, nil}, {9, 9, 0, nil}, {18, 18, 0, nil}, {27, 27, 0, nil}}, release.VerdictInconclusive, false, ""},
		{"an unreadable counter fails closed", 10 * time.Millisecond, []reading{{0, 0, 0, nil}, {0, 0, 0, errors.New("proxy down")}}, release.VerdictFail, true, ""},
		{"no baseline, then bad", 10 * time.Millisecond, []reading{{0, 0, 0, errors.New("down")}, {100, 50, 0, nil}, {200, 100, 0, nil}, {300, 150, 0, nil}}, release.VerdictFail, true, "5xx 50.0% of 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Bake = tc.bake
			ctx := context.Background()
			an, err := Bake(ctx, []Check{ProxyCheck(ctx, &script{reads: tc.reads}, release.Green, o)}, release.Green, o)
			if got := errors.Is(err, target.ErrAnalysisFailed); got != tc.failed || (!tc.failed && err != nil) {
				t.Fatalf("Bake: %v, want failed %v", err, tc.failed)
			}
			if an.Verdict != tc.verdict || !strings.Contains(an.Worst, tc.worst) {
				t.Fatalf("verdict %q worst %q, want %q containing %q; %+v", an.Verdict, an.Worst, tc.verdict, tc.worst, an.Measurements)
			}
			if len(an.Measurements) == 0 {
				t.Fatal("no measurement recorded")
			}
		})
	}
}

func TestBakeInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := Options{Bake: time.Hour, Interval: time.Hour, MaxErrorRate: ptr(0.01)}
	an, err := Bake(ctx, []Check{ProxyCheck(ctx, &script{reads: []reading{{0, 0, 0, nil}}}, release.Green, o)}, release.Green, o)
	if !errors.Is(err, context.Canceled) || errors.Is(err, target.ErrAnalysisFailed) || an.Verdict != "" {
		t.Fatalf("Bake: %v, verdict %q: want interrupted, no verdict", err, an.Verdict)
	}
}

// fixed is a Check that always measures the same.
type fixed release.Measurement

func (f fixed) Measure(context.Context) release.Measurement { return release.Measurement(f) }

func TestCompareCheck(t *testing.T) {
	t.Parallel()
	rate := func(r float64) fixed {
		return fixed{Source: "proxy", Requests: 100, ErrorRate: &r, Verdict: release.VerdictPass}
	}
	for _, tc := range []struct {
		name         string
		canary, base fixed
		verdict, why string
	}{
		{"twice as many errors fails", rate(0.05), rate(0.02), release.VerdictFail, "5xx 5.0% of 100 requests against 2.0% of 100 on the base color, over max-error-factor 2"},
		{"as many errors passes", rate(0.02), rate(0.02), release.VerdictPass, "base color: 5xx 2.0%"},
		{"one error against none passes", rate(0.0009), rate(0), release.VerdictPass, ""},
		{"errors against none fail", rate(0.03), rate(0), release.VerdictFail, "over max-error-factor"},
		{"too few canary requests", fixed{Source: "proxy", Verdict: release.VerdictInconclusive, Why: "no requests"}, rate(0), release.VerdictInconclusive, "canary: no requests"},
	} {
		m := CompareCheck(tc.canary, tc.base, 2).Measure(context.Background())
		if m.Verdict != tc.verdict || !strings.Contains(m.Why, tc.why) || m.Source != "compare" {
			t.Errorf("%s: %+v, want %s with %q", tc.name, m, tc.verdict, tc.why)
		}
	}
}
