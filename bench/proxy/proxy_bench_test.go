// Package proxybench measures the oops proxy (the local target) with real
// processes on 127.0.0.1: switches under continuous load, and throughput
// and latency beside the app alone and beside nginx. Opt-in (make bench):
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/proxy/
//
// The load comes from a second process: wrk when installed (scripts/deps.sh
// bench installs it and nginx), else bench/proxy/loadgen.
package proxybench

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/testport"
)

// bins are the programs a benchmark runs, built into a temporary folder.
type bins struct{ oops, hello, loadgen string }

func build(b *testing.B) bins {
	b.Helper()
	if runtime.GOOS == "windows" {
		b.Skip("the local target needs unix")
	}
	dir := b.TempDir()
	out := bins{filepath.Join(dir, "oops"), filepath.Join(dir, "hello"), filepath.Join(dir, "loadgen")}
	for pkg, dst := range map[string]string{"../../cmd/oops": out.oops, "../../examples/hello": out.hello, "./loadgen": out.loadgen} {
		if msg, err := exec.Command("go", "build", "-o", dst, pkg).CombinedOutput(); err != nil {
			b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return out
}

// freePort is a loopback port a benchmark names before its program
// listens on it, held for the benchmark alone (see internal/testport).
func freePort(b testing.TB) int {
	b.Helper()
	return testport.Get(b)
}

// site is an application on the local target: a directory store with two
// releases of examples/hello, and oops proxy running.
type site struct {
	b                   *testing.B
	bins                bins
	dir                 string
	public, blue, green int
	releases            []string
	proxyLog            *bytes.Buffer
	proxyPID            int
}

func newSite(b *testing.B, bs bins) *site {
	b.Helper()
	s := &site{b: b, bins: bs, dir: b.TempDir(), public: freePort(b), blue: freePort(b), green: freePort(b), proxyLog: &bytes.Buffer{}}
	rc := fmt.Sprintf(`{"application-name": "hello", "store": "releases", "target": "local",
  "listen": "127.0.0.1:%d", "blue-port": %d, "green-port": %d,
  "command": ["./hello"], "drain-timeout": "5s", "verify-timeout": "0s"}`, s.public, s.blue, s.green)
	if err := os.WriteFile(filepath.Join(s.dir, ".oopsrc"), []byte(rc), 0o644); err != nil {
		b.Fatal(err)
	}
	bin, err := os.ReadFile(bs.hello)
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		sha := strings.Repeat(strconv.Itoa(i), 40)
		file := filepath.Join(s.dir, sha+".tar.gz")
		if err := os.WriteFile(file, tarGz(b, bin), 0o644); err != nil {
			b.Fatal(err)
		}
		s.oops("publish", file, "--commit", sha)
		s.releases = append(s.releases, sha)
	}
	proxy := exec.Command(bs.oops, "proxy")
	proxy.Dir = s.dir
	proxy.Stdout, proxy.Stderr = s.proxyLog, s.proxyLog
	if err := proxy.Start(); err != nil {
		b.Fatal(err)
	}
	s.proxyPID = proxy.Process.Pid
	b.Cleanup(func() {
		_ = proxy.Process.Signal(os.Interrupt)
		_ = proxy.Wait()
		// The apps run in their own sessions: stop their groups. Each
		// color's records are <color>.<lock generation>.json.
		recs, _ := filepath.Glob(filepath.Join(s.dir, ".oops", "local", "*.json"))
		for _, f := range recs {
			var rec struct {
				PID int `json:"pid"`
			}
			if data, err := os.ReadFile(f); err == nil && json.Unmarshal(data, &rec) == nil && rec.PID > 0 {
				_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
			}
		}
	})
	waitHTTP(b, fmt.Sprintf("http://127.0.0.1:%d/", s.public))
	return s
}

func tarGz(b *testing.B, bin []byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		b.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		b.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// oops runs the oops CLI in the site and returns its stdout.
func (s *site) oops(args ...string) string {
	s.b.Helper()
	cmd := exec.Command(s.bins.oops, args...)
	cmd.Dir = s.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		s.b.Fatalf("oops %s: %v\n%s%s\nproxy log:\n%s", strings.Join(args, " "), err, out.String(), errb.String(), s.proxyLog)
	}
	return out.String()
}

func waitHTTP(b *testing.B, url string) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never answered: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadResult is bench/proxy/loadgen's output.
type loadResult struct {
	Requests int64            `json:"requests"`
	Failures map[string]int64 `json:"failures"`
	Seconds  float64          `json:"seconds"`
	RPS      float64          `json:"rps"`
	P50MS    float64          `json:"p50_ms"`
	P99MS    float64          `json:"p99_ms"`
	MaxMS    float64          `json:"max_ms"`
	Bodies   map[string]int64 `json:"bodies"`
}

// BenchmarkSwitchUnderLoad: 100 switches (oops rollback, the real CLI)
// while a second process keeps 32 keep-alive connections busy through the
// proxy. Every request must succeed: no error status, no reset, no
// connection refused.
func BenchmarkSwitchUnderLoad(b *testing.B) {
	bs := build(b)
	s := newSite(b, bs)
	for _, sha := range s.releases {
		s.oops("deploy", sha, "--yes")
	}
	const switches = 100
	for range b.N {
		load := exec.Command(bs.loadgen, "-url", fmt.Sprintf("http://127.0.0.1:%d/", s.public), "-c", "32", "-d", "10m", "-expect", "hello from")
		var out bytes.Buffer
		load.Stdout, load.Stderr = &out, os.Stderr
		if err := load.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		var took []time.Duration
		for range switches {
			t0 := time.Now()
			// --force: each rollback marks the release it leaves BAD, and
			// the next one goes right back to it.
			s.oops("rollback", "--yes", "--force", "-m", "bench")
			took = append(took, time.Since(t0))
		}
		time.Sleep(500 * time.Millisecond)
		_ = load.Process.Signal(os.Interrupt)
		if err := load.Wait(); err != nil {
			b.Fatalf("loadgen: %v\n%s", err, out.String())
		}
		var r loadResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			b.Fatalf("loadgen output %q: %v", out.String(), err)
		}
		failed := int64(0)
		for _, n := range r.Failures {
			failed += n
		}
		slices.Sort(took)
		b.Logf("%d switches (oops rollback, median %s per command) under load: %d requests in %.1fs (%.0f/s), %d failed %v; p50 %.2fms p99 %.2fms max %.2fms; answered by %v",
			switches, took[len(took)/2].Round(time.Millisecond), r.Requests, r.Seconds, r.RPS, failed, r.Failures, r.P50MS, r.P99MS, r.MaxMS, r.Bodies)
		b.ReportMetric(float64(switches), "switches")
		b.ReportMetric(float64(r.Requests), "requests")
		b.ReportMetric(float64(failed), "failed")
		b.ReportMetric(r.P99MS, "p99-ms")
		if failed > 0 || len(r.Bodies) != 2 {
			b.Errorf("want zero failed requests and answers from both releases; got %d failed %v, answers %v", failed, r.Failures, r.Bodies)
		}
	}
}

// measurement is one load run against one URL.
type measurement struct {
	rps, p50, p99 float64
	errors        string
}

// loadTool runs a fixed-length load of conns connections against url with
// wrk when it is installed, else loadgen: the same tool for every URL of a
// comparison.
type loadTool func(b *testing.B, url string, conns int, d time.Duration) measurement

func pickTool(bs bins) (string, loadTool) {
	if wrk, err := exec.LookPath("wrk"); err == nil {
		return "wrk --latency", func(b *testing.B, url string, conns int, d time.Duration) measurement {
			threads := min(2, conns)
			out, err := exec.Command(wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", url).CombinedOutput()
			if err != nil {
				b.Fatalf("wrk: %v\n%s", err, out)
			}
			return parseWrk(b, string(out))
		}
	}
	return "loadgen", func(b *testing.B, url string, conns int, d time.Duration) measurement {
		out, err := exec.Command(bs.loadgen, "-url", url, "-c", strconv.Itoa(conns), "-d", d.String()).Output()
		if err != nil {
			b.Fatalf("loadgen: %v", err)
		}
		var r loadResult
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatal(err)
		}
		m := measurement{rps: r.RPS, p50: r.P50MS, p99: r.P99MS}
		if len(r.Failures) > 0 {
			m.errors = fmt.Sprint(r.Failures)
		}
		return m
	}
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP50    = regexp.MustCompile(`\s50%\s+([0-9.]+)(us|ms|s)`)
	wrkP99    = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
	wrkErrors = regexp.MustCompile(`(Socket errors:.*|Non-2xx or 3xx responses:.*)`)
)

func parseWrk(b *testing.B, out string) measurement {
	rps := wrkRPS.FindStringSubmatch(out)
	p50, p99 := wrkP50.FindStringSubmatch(out), wrkP99.FindStringSubmatch(out)
	if rps == nil || p50 == nil || p99 == nil {
		b.Fatalf("unexpected wrk output:\n%s", out)
	}
	ms := func(m []string) float64 {
		v, _ := strconv.ParseFloat(m[1], 64)
		switch m[2] {
		case "us":
			return v / 1000
		case "s":
			return v * 1000
		}
		return v
	}
	m := measurement{p50: ms(p50), p99: ms(p99)}
	m.rps, _ = strconv.ParseFloat(rps[1], 64)
	m.errors = strings.Join(wrkErrors.FindAllString(out, -1), "; ")
	return m
}

// startNginx runs Debian's nginx in the foreground as a reverse proxy from
// 127.0.0.1:port to the app, keep-alive to the upstream like the oops proxy.
func startNginx(b *testing.B, port, app int) (pid int) {
	b.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if nginx, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			b.Skip("nginx is not installed (scripts/deps.sh bench installs it)")
		}
	}
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream app { server 127.0.0.1:%[3]d; keepalive 128; }
  server {
    listen 127.0.0.1:%[2]d;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, dir, port, app)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(nginx, "-e", "stderr", "-p", dir, "-c", file)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", port)); err == nil {
			res.Body.Close()
			return cmd.Process.Pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("nginx did not start: %s", errb.String())
	return 0
}

// cpuTime is the CPU time (user+system) pid has used, with its children
// when kids (nginx's workers); 0 where /proc is not there.
func cpuTime(pid int, kids bool) time.Duration {
	ticks := func(stat string) (int64, int) {
		i := strings.LastIndexByte(stat, ')')
		if i < 0 {
			return 0, 0
		}
		f := strings.Fields(stat[i+1:])
		if len(f) < 13 {
			return 0, 0
		}
		ppid, _ := strconv.Atoi(f[1])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		return u + st, ppid
	}
	const hz = 100 // USER_HZ on Linux
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	total, _ := ticks(string(data))
	if kids {
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, f := range stats {
			if data, err := os.ReadFile(f); err == nil {
				if t, ppid := ticks(string(data)); ppid == pid {
					total += t
				}
			}
		}
	}
	return time.Duration(total) * time.Second / hz
}

// BenchmarkProxyVsNginx: the same load, in one run, straight to the app,
// through the oops proxy and through nginx. Throughput: 64 connections,
// rounds in rotating order so that noise from the machine hits all three
// alike, medians reported, with each proxy's CPU time per request (less
// sensitive to that noise). Latency: one connection at a time, where p99
// is the hop's own cost rather than queueing.
func BenchmarkProxyVsNginx(b *testing.B) {
	bs := build(b)
	s := newSite(b, bs)
	s.oops("deploy", s.releases[0], "--yes")
	app := s.green // the first deploy goes to green
	nginxPort := freePort(b)
	nginxPID := startNginx(b, nginxPort, app)
	toolName, tool := pickTool(bs)
	type target struct {
		name, url string
		cpu       func() time.Duration
	}
	targets := []target{
		{"direct", fmt.Sprintf("http://127.0.0.1:%d/", app), nil},
		{"oops", fmt.Sprintf("http://127.0.0.1:%d/", s.public), func() time.Duration { return cpuTime(s.proxyPID, false) }},
		{"nginx", fmt.Sprintf("http://127.0.0.1:%d/", nginxPort), func() time.Duration { return cpuTime(nginxPID, true) }},
	}
	const rounds, latRounds = 5, 3
	d := 4 * time.Second
	median := func(v []float64) float64 {
		slices.Sort(v)
		return v[len(v)/2]
	}
	for range b.N {
		rps, cpuPer, p99, p50 := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
		for r := range rounds {
			for i := range targets {
				t := targets[(i+r)%len(targets)]
				var before time.Duration
				if t.cpu != nil {
					before = t.cpu()
				}
				m := tool(b, t.url, 64, d)
				if m.errors != "" {
					b.Errorf("%s: %s", t.name, m.errors)
				}
				rps[t.name] = append(rps[t.name], m.rps)
				if t.cpu != nil {
					cpuPer[t.name] = append(cpuPer[t.name], float64((t.cpu()-before).Microseconds())/(m.rps*d.Seconds()))
				}
			}
		}
		for r := range latRounds {
			for i := range targets {
				t := targets[(i+r)%len(targets)]
				m := tool(b, t.url, 1, d)
				p99[t.name] = append(p99[t.name], m.p99)
				p50[t.name] = append(p50[t.name], m.p50)
			}
		}
		var lines []string
		for _, t := range targets {
			line := fmt.Sprintf("%-7s %8.0f req/s   1 conn: p50 %.3f ms  p99 %.3f ms", t.name, median(rps[t.name]), median(p50[t.name]), median(p99[t.name]))
			if t.cpu != nil {
				line += fmt.Sprintf("   proxy CPU %.1f us/request", median(cpuPer[t.name]))
			}
			lines = append(lines, line)
		}
		ratio := median(rps["oops"]) / median(rps["nginx"])
		added := median(p99["oops"]) - median(p99["direct"])
		nginxAdded := median(p99["nginx"]) - median(p99["direct"])
		b.Logf("%s; throughput: 64 connections, %d rounds of %s; latency: 1 connection, %d rounds; medians; %d CPUs:\n%s\n"+
			"oops/nginx throughput %.2f (target >= 0.90); oops/nginx CPU per request %.2f; added p99: oops %.3f ms (target < 1 ms), nginx %.3f ms",
			toolName, rounds, d, latRounds, runtime.NumCPU(), strings.Join(lines, "\n"),
			ratio, median(cpuPer["oops"])/median(cpuPer["nginx"]), added, nginxAdded)
		b.ReportMetric(ratio, "oops/nginx-rps")
		b.ReportMetric(added, "added-p99-ms")
		b.ReportMetric(median(rps["oops"]), "oops-rps")
		b.ReportMetric(median(rps["nginx"]), "nginx-rps")
	}
}
