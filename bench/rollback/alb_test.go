package rollback

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// BenchmarkRollbackALB times `oops rollback` on an ALB beside the same
// command on a Classic ELB, on one moto, every call counted by a fault
// proxy:
//
//	alb-1  an ALB with one listener, named by listener-arn (the 3-call case)
//	alb-2  an ALB with listeners 80 and 443 (HTTPS), named by alb-name
//	elb    a Classic ELB with listeners 80 and 443 (certificate)
//
// Each is rolled back alternately as an operator types it (`--yes`: health
// gate and verification) and as the switch alone (`--yes --force
// --verify-timeout 0`), OOPS_BENCH_RUNS times each (default 5):
//
//	go test -run '^$' -bench RollbackALB -benchtime 1x ./bench/rollback/
func BenchmarkRollbackALB(b *testing.B) {
	r := newRig(b)
	runs, proxy, rec, dir, oops := r.runs, r.proxy, r.rec, r.dir, r.oops
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := awstest.Config(r.moto)

	one, err := albtest.New(ctx, cfg, albtest.Options{Name: "bench-alb1", Weighted: true})
	if err != nil {
		b.Fatal(err)
	}
	two, err := albtest.New(ctx, cfg, albtest.Options{Name: "bench-alb2", Ports: []int{80, 443}, Weighted: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := elbtest.Create(ctx, cfg, elbtest.Fixture{Name: "bench-elb", Blue: "8080", Green: "8081", Instances: 2,
		Listeners: elbtest.Default80443(elbtest.FakeCert)}); err != nil {
		b.Fatal(err)
	}
	type setup struct {
		name, title, oopsrc string
		// live says which color has all the traffic now.
		live func() (release.Color, error)
		dir  string
	}
	albLive := func(a *albtest.ALB, ports ...int) func() (release.Color, error) {
		return func() (release.Color, error) {
			var got []string
			for _, p := range ports {
				w, err := a.Weights(ctx, cfg, p)
				if err != nil {
					return "", err
				}
				got = append(got, fmt.Sprintf("blue=%d green=%d", w["blue"], w["green"]))
			}
			switch strings.Join(got, ";") {
			case strings.TrimSuffix(strings.Repeat("blue=100 green=0;", len(ports)), ";"):
				return release.Blue, nil
			case strings.TrimSuffix(strings.Repeat("blue=0 green=100;", len(ports)), ";"):
				return release.Green, nil
			}
			return "", fmt.Errorf("%s is split: %v", a.Name, got)
		}
	}
	setups := []*setup{
		{name: "alb-1", title: "ALB, 1 listener", oopsrc: fmt.Sprintf(`{"listener-arn": %q, "application-name": "alb1", "store": "store"}`, one.Listeners[80]), live: albLive(one, 80)},
		{name: "alb-2", title: "ALB, 80+443", oopsrc: `{"alb-name": "bench-alb2", "application-name": "alb2", "store": "store"}`, live: albLive(two, 80, 443)},
		{name: "elb", title: "Classic ELB, 80+443", oopsrc: `{"elb-name": "bench-elb", "application-name": "elb", "store": "store"}`,
			live: func() (release.Color, error) {
				s, err := elbtest.Read(ctx, cfg, "bench-elb")
				if err != nil {
					return "", err
				}
				if len(s.Listeners) == 2 && strings.Contains(s.Listeners[0], ":8081") && strings.Contains(s.Listeners[1], ":8081") {
					return release.Green, nil
				}
				if len(s.Listeners) == 2 && strings.Contains(s.Listeners[0], ":8080") && strings.Contains(s.Listeners[1], ":8080") {
					return release.Blue, nil
				}
				return "", fmt.Errorf("bench-elb listeners %v", s.Listeners)
			}},
	}
	for _, s := range setups {
		s.dir = filepath.Join(dir, s.name)
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, ".oopsrc"), []byte(s.oopsrc), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	env := r.env()
	modes := []struct{ name, title string }{{"gated", "oops rollback --yes"}, {"switch", "... --force --verify-timeout 0"}}
	argv := map[string][]string{
		"gated":  {oops, "rollback", "--yes"},
		"switch": {oops, "rollback", "--yes", "--force", "--verify-timeout", "0"},
	}
	results := map[string][]run{}
	one1 := func(s *setup, mode string) run {
		before, err := s.live()
		if err != nil {
			b.Fatal(err)
		}
		r, err := measure(argv[mode], s.dir, env, proxy, rec)
		if err != nil {
			b.Fatalf("%s %s: %v", s.name, mode, err)
		}
		r.window = rec.busy() // reused: time spent waiting for AWS
		after, err := s.live()
		if err != nil || after != before.Other() {
			b.Fatalf("%s %s: %s before, %s after (%v): not rolled back", s.name, mode, before, after, err)
		}
		return r
	}
	// Warm-up, not measured: page cache, and the Classic ELB's one-time
	// listener record.
	for _, s := range setups {
		one1(s, "switch")
	}
	b.ResetTimer()
	for range runs {
		for _, mode := range modes {
			for _, s := range setups {
				results[s.name+"/"+mode.name] = append(results[s.name+"/"+mode.name], one1(s, mode.name))
			}
		}
	}
	b.StopTimer()

	fmt.Printf("\noops rollback, %d runs of each, alternating, one moto (median wall time, of it waiting for AWS; API calls)\n", runs)
	fmt.Printf("%-32s", "")
	for _, s := range setups {
		fmt.Printf(" %30s", s.title)
	}
	fmt.Println()
	for _, mode := range modes {
		fmt.Printf("%-32s", mode.title)
		for _, s := range setups {
			rs := results[s.name+"/"+mode.name]
			fmt.Printf(" %30s", fmt.Sprintf("%s (%s), %d calls", round(median(rs, wall)), round(median(rs, window)), len(rs[0].calls)))
		}
		fmt.Println()
	}
	for _, mode := range modes {
		for _, s := range setups {
			fmt.Printf("%-6s %-7s %s\n", s.name, mode.name, strings.Join(results[s.name+"/"+mode.name][0].calls, ", "))
		}
	}
	ms := func(key string) float64 { return float64(median(results[key], wall).Microseconds()) / 1000 }
	for _, s := range setups {
		for _, mode := range modes {
			key := s.name + "/" + mode.name
			b.ReportMetric(ms(key), s.name+"-"+mode.name+"-ms")
			b.ReportMetric(float64(len(results[key][0].calls)), s.name+"-"+mode.name+"-calls")
		}
	}
	b.ReportMetric(ms("elb/gated")/ms("alb-1/gated"), "elb/alb-1")
}

// busy is how long the calls since the last Reset took, added up (oops
// makes them one after the other).
func (r *recorder) busy() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d time.Duration
	for _, c := range r.calls {
		d += c.end.Sub(c.start)
	}
	return d
}
