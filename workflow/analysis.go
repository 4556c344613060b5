package workflow

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oops-deploy/oops/analysis"
	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// StageSmoke is how the smoke test is recorded among the event's hooks.
const StageSmoke = "smoke"

// defaultSmokeTimeout is smoke-timeout when .oopsrc does not set it.
const defaultSmokeTimeout = 5 * time.Minute

// warmUpTimeout bounds one warm-up request.
const warmUpTimeout = 10 * time.Second

// gateColor is what runs last before traffic moves to p.To, after the
// health gate and the confirmation: the smoke test, the warm-up, then the
// pre-switch hook. --force skips the smoke test and the warm-up (the hook
// then only warns).
func (r *Runner) gateColor(ctx context.Context, ev *release.Event, st *target.State, p *target.Plan, force bool) error {
	url := colorURL(st, p.To)
	if !force {
		if err := r.smoke(ctx, ev, st, p.To, url); err != nil {
			return err
		}
		r.warmUp(ctx, ev, p.To, url)
	}
	if !runsHooks(ev.Action) {
		return nil
	}
	return r.gateHook(ctx, StagePreSwitch, ev, url, force)
}

// smoke runs .oopsrc's smoke command against color c (OOPS_URL,
// OOPS_COLOR, OOPS_COMMIT): a non-zero exit refuses the switch (exit 6)
// with the tail of its output, which the event records.
func (r *Runner) smoke(ctx context.Context, ev *release.Event, st *target.State, c release.Color, url string) error {
	cfg, err := r.d.Config()
	if err != nil || len(cfg.Values.Analysis.Smoke) == 0 {
		return nil
	}
	timeout := cfg.Values.Analysis.SmokeTimeout
	if timeout <= 0 {
		timeout = defaultSmokeTimeout
	}
	commit := ""
	if cs := st.Color(c); cs.CommitKnown() {
		commit = cs.Commit
	}
	extra := [][2]string{{"OOPS_COLOR", string(c)}, {"OOPS_COMMIT", commit}}
	err = r.runCommand(ctx, cfg, StageSmoke, "smoke", cfg.Values.Analysis.Smoke, timeout, ev, "", url, extra)
	if err == nil {
		return nil
	}
	runs := ev.HookRuns()
	tail := runs[len(runs)-1].Tail
	if tail != "" {
		err = fmt.Errorf("%w; its last lines:\n%s", err, tail)
	}
	return target.Hinted(&hookRefusedError{err}, fmt.Sprintf("%s was not switched to; the smoke output is in oops history --json; fix the release, or pass --force to switch without the smoke test", c))
}

// warmUp sends .oopsrc's warm-up requests to color c at url before it
// takes traffic. Failures are counted and warned about, not refused: the
// smoke test and the health gate judge the color.
func (r *Runner) warmUp(ctx context.Context, ev *release.Event, c release.Color, url string) {
	cfg, err := r.d.Config()
	if err != nil || len(cfg.Values.Analysis.WarmUpPaths) == 0 {
		return
	}
	a := cfg.Values.Analysis
	if url == "" {
		r.warnf("warm-up skipped: oops does not know where %s answers on this target (one instance with an address)", c)
		return
	}
	n := max(1, a.WarmUpRequests)
	hc := &http.Client{Timeout: warmUpTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	wu := &release.WarmUp{}
	r.d.Report.Progressf("warming up %s: %d request(s) to each of %s", c, n, strings.Join(a.WarmUpPaths, ", "))
	for _, path := range a.WarmUpPaths {
		for range n {
			if ctx.Err() != nil {
				break
			}
			wu.Requests++
			if !warmOnce(ctx, hc, url+path) {
				wu.Failed++
			}
		}
	}
	if wu.Failed > 0 {
		r.warnf("warm-up of %s: %d of %d requests failed (no answer or 5xx)", c, wu.Failed, wu.Requests)
	}
	an := analysisOf(ev)
	an.WarmUp = wu
}

func warmOnce(ctx context.Context, hc *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "oops-warm-up")
	res, err := hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	return res.StatusCode < 500
}

// analysisOf is ev's analysis, made when it has none.
func analysisOf(ev *release.Event) *release.Analysis {
	if ev.Analysis == nil {
		ev.Analysis = &release.Analysis{}
	}
	return ev.Analysis
}

// bakePlan is the bake a switch will run: how long and how, and the
// sources it reads.
type bakePlan struct {
	opts    analysis.Options
	counter target.Counter         // the proxy's counts, when judged on them
	dims    target.Dimensioned     // an ALB's target groups, judged in CloudWatch
	cw      analysis.CloudWatchAPI // for alarms and target-group metrics
	cfg     config.Analysis
}

// bakeFor is the bake of a switch on t: flag is --bake (nil: bake from
// .oopsrc). It returns nil when there is none, and refuses, before
// anything changes, a bake that cannot be made (nothing to measure, a
// target that counts no requests, no CloudWatch).
func (r *Runner) bakeFor(ctx context.Context, t target.Target, flag *time.Duration) (*bakePlan, error) {
	cfg, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	a := cfg.Values.Analysis
	d := time.Duration(0)
	switch {
	case flag != nil:
		d = *flag
	case a.Bake != nil:
		d = *a.Bake
	}
	if d <= 0 {
		return nil, nil
	}
	if !a.Measures() {
		return nil, Usagef("a bake of %s has nothing to measure: set max-error-rate (like \"2%%\"), max-latency-p99 (like \"800ms\"), max-error-factor or alarms in %s", d, cfg.Path)
	}
	bp := &bakePlan{cfg: a, opts: analysis.Options{
		Bake: d, Interval: a.AnalysisInterval, FailureLimit: a.FailureLimit,
		MaxErrorRate: a.MaxErrorRate, MaxP99: a.MaxLatencyP99, MinRequests: a.MinRequests,
	}}
	cloudwatch := func() error {
		if bp.cw != nil {
			return nil
		}
		if r.d.CloudWatch == nil {
			return Usagef("the bake needs CloudWatch, which this command cannot reach")
		}
		if bp.cw, err = r.d.CloudWatch(ctx); err != nil {
			return fmt.Errorf("open CloudWatch for the bake: %w", err)
		}
		return nil
	}
	if a.Requests() {
		switch tt := t.(type) {
		case target.Counter:
			bp.counter = tt
		case target.Dimensioned:
			// An ALB: its target groups' metrics in CloudWatch.
			bp.dims = tt
			if err := cloudwatch(); err != nil {
				return nil, err
			}
		default:
			return nil, Usagef("%s counts no requests per color: max-error-rate and max-latency-p99 are measured on the local target's proxy or an ALB's target groups; watch CloudWatch alarms instead (alarms), or pass --bake 0s to switch without a bake", t)
		}
	}
	if len(a.Alarms) > 0 {
		if err := cloudwatch(); err != nil {
			return nil, err
		}
	}
	return bp, nil
}

// at is bp for a canary step of weight percent: its measurements say
// which step they belong to.
func (bp *bakePlan) at(weight int) *bakePlan {
	if bp == nil {
		return nil
	}
	c := *bp
	c.opts.Weight = weight
	return &c
}

// bake is target.SwitchOptions.Bake for bp, recorded in ev: a bake with
// too little traffic to judge lets the switch stand, and says so.
func (r *Runner) bake(ev *release.Event, bp *bakePlan) func(ctx context.Context, to release.Color) error {
	if bp == nil {
		return nil
	}
	return func(ctx context.Context, to release.Color) error {
		o := bp.opts
		o.Logf = r.d.Report.Progressf
		var checks []analysis.Check
		// source is the check of color c's requests, nil when not judged.
		source := func(c release.Color) (analysis.Check, error) {
			switch {
			case bp.counter != nil:
				return analysis.ProxyCheck(ctx, bp.counter, c, o), nil
			case bp.dims != nil:
				ns, dims, err := bp.dims.MetricDimensions(ctx, c)
				if err != nil {
					return nil, fmt.Errorf("bake of %s: %w", c, err)
				}
				return analysis.MetricCheck(bp.cw, ns, dims, o), nil
			}
			return nil, nil
		}
		if bp.cfg.MaxErrorRate != nil || bp.cfg.MaxLatencyP99 > 0 {
			ch, err := source(to)
			if err != nil {
				return err
			}
			checks = append(checks, ch)
		}
		if f := bp.cfg.MaxErrorFactor; f > 0 && o.Weight > 0 && o.Weight < 100 {
			// A canary: both colors take traffic, compare them.
			canary, err := source(to)
			if err != nil {
				return err
			}
			base, err := source(to.Other())
			if err != nil {
				return err
			}
			checks = append(checks, analysis.CompareCheck(canary, base, f))
		}
		if len(bp.cfg.Alarms) > 0 {
			checks = append(checks, analysis.AlarmCheck(bp.cw, bp.cfg.Alarms, bp.cfg.AlarmsIgnoreErrors))
		}
		iv, fl := o.Interval, o.FailureLimit
		if iv <= 0 {
			iv = analysis.DefaultInterval
		}
		if fl <= 0 {
			fl = analysis.DefaultFailureLimit
		}
		r.d.Report.Progressf("baking %s for %s: measured every %s, %d failed measurement(s) in a row switch back", to, o.Bake, iv, fl)
		an, err := analysis.Bake(ctx, checks, to, o)
		prev := analysisOf(ev)
		an.WarmUp = prev.WarmUp
		// A canary's steps: one analysis, every step's measurements.
		an.Measurements = append(slices.Clip(prev.Measurements), an.Measurements...)
		ev.Analysis = an
		if err == nil && an.Verdict == release.VerdictInconclusive {
			r.warnf("bake of %s inconclusive: no measurement could judge it (fewer than min-requests requests, or alarms unreadable); the switch stands, unjudged", to)
		}
		if ctx.Err() != nil {
			r.warnf("bake interrupted: traffic stays on %s, unjudged; oops rollback switches back", to)
		}
		return err
	}
}
