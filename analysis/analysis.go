// Package analysis is the bake: after a switch, oops measures the color
// that now takes traffic every interval, judges each measurement against
// the thresholds of .oopsrc (max-error-rate, max-latency-p99, with
// min-requests below which a measurement is inconclusive), and calls the
// release bad after failure-limit failed measurements in a row. The
// numbers come from a target.Counter (the local proxy's per-color
// counters); every measurement is kept for history.
package analysis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// Defaults for the keys .oopsrc leaves unset.
const (
	DefaultInterval     = 10 * time.Second
	DefaultFailureLimit = 2
	DefaultMinRequests  = 20
)

// Options are one bake's settings.
type Options struct {
	// Bake is how long to watch; at least one measurement is made.
	Bake time.Duration
	// Interval spaces measurements (0: DefaultInterval).
	Interval time.Duration
	// FailureLimit failed measurements in a row fail the bake (0:
	// DefaultFailureLimit).
	FailureLimit int
	// MaxErrorRate is the highest share of 5xx that passes (nil: not
	// judged); MaxP99 the slowest 99th percentile (0: not judged).
	MaxErrorRate *float64
	MaxP99       time.Duration
	// MinRequests: a measurement of fewer requests is inconclusive (nil:
	// DefaultMinRequests). A measurement of none always is.
	MinRequests *int
	// Logf receives one line per measurement (stderr).
	Logf func(format string, args ...any)
	// Now is the clock of the measurements' times (default time.Now).
	Now func() time.Time
	// Weight is the share of traffic the color has (a canary step), noted
	// in each measurement; 0: all of it.
	Weight int
}

func (o *Options) fill() {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.FailureLimit <= 0 {
		o.FailureLimit = DefaultFailureLimit
	}
	if o.MinRequests == nil {
		n := DefaultMinRequests
		o.MinRequests = &n
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Check is one source of measurements of the color under bake: each call
// of Measure judges what happened since the previous one (or since the
// check was made).
type Check interface {
	Measure(ctx context.Context) release.Measurement
}

// proxyCheck measures a color on a target's per-color counters.
type proxyCheck struct {
	src  target.Counter
	c    release.Color
	o    Options
	prev *target.Counts
}

// ProxyCheck judges color c on src's counters against o's thresholds,
// from a first reading taken now.
func ProxyCheck(ctx context.Context, src target.Counter, c release.Color, o Options) Check {
	o.fill()
	prev, err := src.Counts(ctx, c)
	if err != nil {
		prev = nil // the first measurement is then inconclusive: no baseline
	}
	return &proxyCheck{src: src, c: c, o: o, prev: prev}
}

func (p *proxyCheck) Measure(ctx context.Context) release.Measurement {
	cur, err := p.src.Counts(ctx, p.c)
	m := judge(p.prev, cur, err, p.o)
	if err == nil {
		p.prev = cur
	}
	return m
}

// Bake watches color c for o.Bake, measuring it with every check each
// interval: an interval fails when any check fails, passes when none
// fails and one passes, and is inconclusive otherwise. It returns the
// analysis so far in every case: with an error wrapping
// target.ErrAnalysisFailed when failure-limit intervals in a row failed
// (the verdict "fail"), with the context's error when interrupted (no
// verdict), else nil with the verdict "pass" (at least one interval
// passed) or "inconclusive" (none did: too little traffic to judge; the
// caller lets the switch stand and says so).
func Bake(ctx context.Context, checks []Check, c release.Color, o Options) (*release.Analysis, error) {
	o.fill()
	an := &release.Analysis{Bake: o.Bake.String()}
	n := max(1, int((o.Bake+o.Interval-1)/o.Interval))
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	var w worst
	failed, passed := 0, false
	for i := range n {
		select {
		case <-ctx.Done():
			an.Worst = w.String()
			return an, fmt.Errorf("bake of %s interrupted after %d of %d measurements: %w", c, i, n, context.Cause(ctx))
		case <-tick.C:
		}
		verdict, why := release.VerdictInconclusive, ""
		for _, ch := range checks {
			m := ch.Measure(ctx)
			if ctx.Err() != nil {
				break // said at the top of the loop
			}
			m.At, m.Weight = o.Now(), o.Weight
			an.Measurements = append(an.Measurements, m)
			w.add(m)
			o.Logf("bake %d/%d of %s: %s", i+1, n, c, describe(m))
			switch {
			case m.Verdict == release.VerdictFail && verdict != release.VerdictFail:
				verdict, why = release.VerdictFail, m.Why
			case m.Verdict == release.VerdictPass && verdict == release.VerdictInconclusive:
				verdict = release.VerdictPass
			}
		}
		if ctx.Err() != nil {
			continue
		}
		switch verdict {
		case release.VerdictPass:
			failed, passed = 0, true
		case release.VerdictFail:
			failed++
		}
		if failed >= o.FailureLimit {
			an.Verdict, an.Worst = release.VerdictFail, w.String()
			return an, fmt.Errorf("%w: %s failed %d measurements in a row (failure-limit %d), the last: %s",
				target.ErrAnalysisFailed, c, failed, o.FailureLimit, why)
		}
	}
	an.Worst = w.String()
	if ctx.Err() != nil {
		return an, fmt.Errorf("bake of %s interrupted: %w", c, context.Cause(ctx))
	}
	an.Verdict = release.VerdictInconclusive
	if passed {
		an.Verdict = release.VerdictPass
	}
	return an, nil
}

// judge measures what happened between prev and cur (the counts read
// one interval apart). An unreadable counter fails the measurement: a
// bake that cannot see the color does not vouch for it.
func judge(prev, cur *target.Counts, err error, o Options) release.Measurement {
	m := release.Measurement{Source: "proxy"}
	switch {
	case err != nil:
		m.Verdict, m.Why = release.VerdictFail, "cannot read the request counts: "+err.Error()
		return m
	case prev == nil:
		m.Verdict, m.Why = release.VerdictInconclusive, "no earlier reading to compare with"
		return m
	case cur.Requests < prev.Requests || cur.ServerErrors < prev.ServerErrors || len(cur.Buckets) != len(prev.Buckets):
		m.Verdict, m.Why = release.VerdictInconclusive, "the counters restarted (the proxy restarted)"
		return m
	}
	m.Requests = cur.Requests - prev.Requests
	if m.Requests == 0 || m.Requests < uint64(*o.MinRequests) {
		m.Verdict = release.VerdictInconclusive
		m.Why = fmt.Sprintf("%d requests, fewer than min-requests %d", m.Requests, *o.MinRequests)
		if m.Requests == 0 {
			m.Why = "no requests"
		}
		return m
	}
	rate := float64(cur.ServerErrors-prev.ServerErrors) / float64(m.Requests)
	m.ErrorRate = &rate
	delta := make([]uint64, len(cur.Buckets))
	for i := range delta {
		delta[i] = cur.Buckets[i] - prev.Buckets[i]
	}
	p99 := quantile(cur.Bounds, delta, 0.99) * 1000
	m.P99MS = &p99
	m.Verdict = release.VerdictPass
	switch {
	case o.MaxErrorRate != nil && rate > *o.MaxErrorRate:
		m.Verdict = release.VerdictFail
		m.Why = fmt.Sprintf("5xx %s of %d requests, over max-error-rate %s", pct(rate), m.Requests, pct(*o.MaxErrorRate))
	case o.MaxP99 > 0 && p99 > float64(o.MaxP99)/float64(time.Millisecond):
		m.Verdict = release.VerdictFail
		m.Why = fmt.Sprintf("p99 %s over %d requests, over max-latency-p99 %s", ms(p99), m.Requests, o.MaxP99)
	}
	return m
}

// quantile estimates the q-quantile in seconds from cumulative buckets
// (one more than bounds), interpolating in its bucket as Prometheus'
// histogram_quantile does; past the last bound, that bound.
func quantile(bounds []float64, buckets []uint64, q float64) float64 {
	if len(buckets) == 0 || len(bounds) == 0 || buckets[len(buckets)-1] == 0 {
		return math.NaN()
	}
	rank := q * float64(buckets[len(buckets)-1])
	for i, cum := range buckets {
		if float64(cum) < rank {
			continue
		}
		if i >= len(bounds) {
			return bounds[len(bounds)-1]
		}
		lo, below := 0.0, uint64(0)
		if i > 0 {
			lo, below = bounds[i-1], buckets[i-1]
		}
		in := cum - below
		if in == 0 {
			return bounds[i]
		}
		return lo + (bounds[i]-lo)*(rank-float64(below))/float64(in)
	}
	return bounds[len(bounds)-1]
}

// worst keeps the worst numbers of a bake, for the history table.
type worst struct {
	rate, p99 *release.Measurement
}

func (w *worst) add(m release.Measurement) {
	if m.ErrorRate != nil && (w.rate == nil || *m.ErrorRate > *w.rate.ErrorRate) {
		w.rate = &m
	}
	if m.P99MS != nil && (w.p99 == nil || *m.P99MS > *w.p99.P99MS) {
		w.p99 = &m
	}
}

func (w *worst) String() string {
	switch {
	case w.rate == nil:
		return ""
	case w.p99 == nil:
		return fmt.Sprintf("5xx %s of %d", pct(*w.rate.ErrorRate), w.rate.Requests)
	}
	return fmt.Sprintf("5xx %s of %d, p99 %s", pct(*w.rate.ErrorRate), w.rate.Requests, ms(*w.p99.P99MS))
}

func describe(m release.Measurement) string {
	if m.ErrorRate == nil {
		if m.Why == "" {
			return m.Source + " " + m.Verdict
		}
		return m.Source + " " + m.Verdict + " (" + m.Why + ")"
	}
	s := fmt.Sprintf("%s: %d requests, 5xx %s", m.Verdict, m.Requests, pct(*m.ErrorRate))
	if m.P99MS != nil {
		s += ", p99 " + ms(*m.P99MS)
	}
	if m.Source != "proxy" {
		s = m.Source + " " + s
	}
	if m.Why != "" {
		s += " (" + m.Why + ")"
	}
	return s
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

func ms(v float64) string {
	return time.Duration(v * float64(time.Millisecond)).Round(time.Millisecond).String()
}

// compareCheck judges a canary against the color it started from: both
// take traffic, and the new one fails when its share of 5xx is more than
// factor times the old one's (plus 0.1 point, so that a single error
// against none is not a failure).
type compareCheck struct {
	canary, base Check
	factor       float64
}

// CompareCheck judges canary's measurements against base's (the same
// source, for the two colors) by factor.
func CompareCheck(canary, base Check, factor float64) Check {
	return &compareCheck{canary: canary, base: base, factor: factor}
}

// compareSlack is the error share the canary may have over factor times
// the base's.
const compareSlack = 0.001

func (cc *compareCheck) Measure(ctx context.Context) release.Measurement {
	n, b := cc.canary.Measure(ctx), cc.base.Measure(ctx)
	m := release.Measurement{Source: "compare", Requests: n.Requests, ErrorRate: n.ErrorRate}
	switch {
	case n.ErrorRate == nil:
		m.Verdict, m.Why = release.VerdictInconclusive, "canary: "+n.Why
	case b.ErrorRate == nil:
		m.Verdict, m.Why = release.VerdictInconclusive, "base: "+b.Why
	case *n.ErrorRate > cc.factor**b.ErrorRate+compareSlack:
		m.Verdict = release.VerdictFail
		m.Why = fmt.Sprintf("5xx %s of %d requests against %s of %d on the base color, over max-error-factor %g", pct(*n.ErrorRate), n.Requests, pct(*b.ErrorRate), b.Requests, cc.factor)
	default:
		m.Verdict = release.VerdictPass
		m.Why = fmt.Sprintf("base color: 5xx %s of %d requests", pct(*b.ErrorRate), b.Requests)
	}
	return m
}
