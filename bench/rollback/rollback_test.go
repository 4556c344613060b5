package rollback

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// BenchmarkRollbackVsSeed runs the original shell flip and `oops rollback
// --yes` alternately on the same ELB (listeners 80 and 443, an IAM server
// certificate, two registered instances) in one moto, every call going
// through a fault proxy (which counts them) and a recorder (which times
// them), and prints median wall times, their ratio, the calls each makes
// and the no-listener window of each.
func BenchmarkRollbackVsSeed(b *testing.B) {
	for _, tool := range []string{"aws", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed (bash scripts/deps.sh bench installs it)", tool)
		}
	}
	root := moduleRoot(b)
	seed := os.Getenv("OOPS_SEED_SCRIPT")
	if seed == "" {
		seed = filepath.Join(root, "..", "shared", "bench", "seed-rollback.sh")
	}
	if _, err := os.Stat(seed); err != nil {
		b.Skipf("no baseline script: %v (set OOPS_SEED_SCRIPT)", err)
	}
	r := newRig(b)
	runs, proxy, rec, dir, oops, motoURL := r.runs, r.proxy, r.rec, r.dir, r.oops, r.moto
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cert := uploadCert(b, dir, motoURL)
	const name = "bench-web"
	if _, err := elbtest.Create(ctx, awstest.Config(motoURL), elbtest.Fixture{
		Name: name, Blue: "8080", Green: "8081", Instances: 2,
		Listeners: elbtest.Default80443(cert),
	}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".oopsrc"), fmt.Appendf(nil, `{"elb-name": %q, "application-name": "bench", "store": "store"}`, name), 0o644); err != nil {
		b.Fatal(err)
	}
	env := r.env()

	// "oops-nv" is the switch alone, like the seed script (which verifies
	// nothing): they are compared run for run. "oops" is the command as an
	// operator types it: after the switch it verifies the new color, and on
	// a Classic ELB that cannot end before the ELB's own health check has
	// judged the new port (interval x max(thresholds) + timeout after the
	// check moved; see target/elb Verify): it runs once, at the end.
	order := []string{"seed", "oops-nv"}
	tools := map[string][]string{
		"seed":    {"bash", seed, name, cert},
		"oops":    {oops, "rollback", "--yes"},
		"oops-nv": {oops, "rollback", "--yes", "--verify-timeout", "0"},
	}
	results := map[string][]run{}
	port := 8080
	flip := func() { port = 8080 + 8081 - port }
	// Warm-up, not measured: oops records the listener definitions (one
	// tag write, once per ELB), and every tool's files are in the page cache.
	for _, tool := range order {
		if _, err := measure(tools[tool], dir, env, proxy, rec); err != nil {
			b.Fatalf("%s warm-up: %v", tool, err)
		}
		flip()
		checkOnPort(b, ctx, motoURL, name, port)
	}
	b.ResetTimer()
	for i := range len(order) * runs {
		tool := order[i%len(order)]
		r, err := measure(tools[tool], dir, env, proxy, rec)
		if err != nil {
			b.Fatalf("%s run %d: %v", tool, i/len(order)+1, err)
		}
		results[tool] = append(results[tool], r)
		flip()
		checkOnPort(b, ctx, motoURL, name, port)
	}
	b.StopTimer()
	verified, err := measure(tools["oops"], dir, env, proxy, rec)
	if err != nil {
		b.Fatalf("oops rollback (verified): %v", err)
	}
	flip()
	checkOnPort(b, ctx, motoURL, name, port)
	results["oops"] = []run{verified}

	seedWall, oopsWall, nvWall := median(results["seed"], wall), median(results["oops"], wall), median(results["oops-nv"], wall)
	seedWin, nvWin := median(results["seed"], window), median(results["oops-nv"], window)
	ratio := float64(seedWall) / float64(nvWall)
	oc, nc, sc := elbCalls(results["oops"][0].calls), elbCalls(results["oops-nv"][0].calls), elbCalls(results["seed"][0].calls)
	fmt.Printf("\nrollback of a Classic ELB with listeners 80 and 443 (IAM certificate on 443), %d runs each, alternating, one moto\n", runs)
	fmt.Printf("%-22s %14s %26s %26s\n", "", "seed script", "oops rollback, no verify", "oops rollback (1 run)")
	fmt.Printf("%-22s %14s %26s %26s\n", "median wall time", round(seedWall), round(nvWall), round(oopsWall))
	fmt.Printf("%-22s %14d %26d %26d\n", "ELB API calls", len(sc), len(nc), len(oc))
	fmt.Printf("%-22s %14s %26s %26s\n", "no-listener window", round(seedWin), round(nvWin), round(median(results["oops"], window)))
	fmt.Printf("oops switches back %.0fx faster than the seed script (target >= 40x); its no-listener window is %.0fx shorter.\n"+
		"The verified rollback has traffic back as fast, then waits for the ELB's own health check to judge the new port\n",
		ratio, float64(seedWin)/float64(nvWin))
	fmt.Printf("oops calls:   %s\n", strings.Join(oc, ", "))
	fmt.Printf("seed calls:   %s\n", strings.Join(sc, ", "))
	if other := slices.DeleteFunc(slices.Clone(results["oops"][0].calls), isELB); len(other) > 0 {
		fmt.Printf("oops also called (not ELB): %s\n", strings.Join(other, ", "))
	}
	fmt.Printf("window: from the first DeleteLoadBalancerListeners arriving at the proxy to the last CreateLoadBalancerListeners answered (median)\n")
	b.ReportMetric(ratio, "x-faster")
	b.ReportMetric(float64(len(oc)), "oops-calls")
	b.ReportMetric(float64(len(nc)), "oops-switch-calls")
	b.ReportMetric(float64(oopsWall.Microseconds())/1000, "oops-ms")
	b.ReportMetric(float64(seedWall.Microseconds())/1000, "seed-ms")
	b.ReportMetric(float64(nvWall.Microseconds())/1000, "oops-switch-ms")
	b.ReportMetric(float64(nvWin.Microseconds())/1000, "oops-window-ms")
	b.ReportMetric(float64(seedWin.Microseconds())/1000, "seed-window-ms")
}

// elbActions are the Classic ELB API operations either tool may call.
var elbActions = []string{
	"DescribeLoadBalancers", "DescribeTags", "DescribeInstanceHealth", "ConfigureHealthCheck",
	"DeleteLoadBalancerListeners", "CreateLoadBalancerListeners", "SetLoadBalancerPoliciesOfListener",
	"AddTags", "RemoveTags",
}

func isELB(action string) bool { return slices.Contains(elbActions, action) }

// elbCalls keeps the ELB calls (oops also asks STS who runs it, for the
// history, and may touch its store).
func elbCalls(calls []string) []string {
	return slices.DeleteFunc(slices.Clone(calls), func(a string) bool { return !isELB(a) })
}

type run struct {
	wall, window time.Duration
	calls        []string
}

func wall(r run) time.Duration   { return r.wall }
func window(r run) time.Duration { return r.window }

func measure(argv []string, dir string, env []string, proxy *faultproxy.Proxy, rec *recorder) (run, error) {
	proxy.Clear()
	rec.Reset()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := run{wall: time.Since(start), calls: proxy.Calls(), window: rec.Window()}
	if err != nil {
		return r, fmt.Errorf("%v\n%s", err, out.String())
	}
	return r, nil
}

func median(rs []run, f func(run) time.Duration) time.Duration {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = f(r)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func round(d time.Duration) string {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

// checkOnPort fails unless both listeners point at port (each run must
// really have switched).
func checkOnPort(b *testing.B, ctx context.Context, motoURL, name string, port int) {
	b.Helper()
	s, err := elbtest.Read(ctx, awstest.Config(motoURL), name)
	if err != nil {
		b.Fatal(err)
	}
	p := ":" + strconv.Itoa(port)
	if len(s.Listeners) != 2 || !strings.Contains(s.Listeners[0], p) || !strings.Contains(s.Listeners[1], p) {
		b.Fatalf("after a run the listeners are %v, want both on %d", s.Listeners, port)
	}
}

// rig is what both rollback benchmarks stand on: one moto, the fault proxy
// that counts the calls, the recorder that times them, and an oops binary.
type rig struct {
	runs  int    // OOPS_BENCH_RUNS, default 5
	moto  string // moto itself, for setting up fixtures
	proxy *faultproxy.Proxy
	rec   *recorder
	dir   string
	oops  string
}

func newRig(b *testing.B) *rig {
	b.Helper()
	r := &rig{runs: 5, dir: b.TempDir()}
	if s := os.Getenv("OOPS_BENCH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("OOPS_BENCH_RUNS=%q is not a positive number", s)
		}
		r.runs = n
	}
	m, err := elbtest.StartServer()
	if err != nil {
		awstest.Unavailable(b, err)
	}
	b.Cleanup(m.Stop)
	r.moto = m.URL
	r.proxy = faultproxy.New(m.URL)
	b.Cleanup(r.proxy.Close)
	r.rec = newRecorder(r.proxy.URL)
	b.Cleanup(r.rec.Close)
	r.oops = filepath.Join(r.dir, "oops")
	build := exec.Command("go", "build", "-o", r.oops, "./cmd/oops")
	build.Dir = moduleRoot(b)
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build oops: %v\n%s", err, out)
	}
	return r
}

// env is the environment oops runs in: AWS through the recorder, no
// profile or credentials from this machine.
func (r *rig) env() []string {
	env := append(os.Environ(), awstest.Env(r.rec.URL())...)
	return append(env, "HOME="+r.dir, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// recorder times every call on its way to the fault proxy.
type recorder struct {
	srv *httptest.Server
	rp  *httputil.ReverseProxy

	mu    sync.Mutex
	calls []timed
}

type timed struct {
	action     string
	start, end time.Time
}

func newRecorder(upstream string) *recorder {
	u, _ := url.Parse(upstream)
	r := &recorder{rp: httputil.NewSingleHostReverseProxy(u)}
	r.srv = httptest.NewServer(r)
	return r
}

func (r *recorder) URL() string { return r.srv.URL }
func (r *recorder) Close()      { r.srv.Close() }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	c := timed{action: faultproxy.ActionOf(req, body), start: time.Now()}
	r.rp.ServeHTTP(w, req)
	c.end = time.Now()
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// Window is the time from the first DeleteLoadBalancerListeners arriving
// to the last CreateLoadBalancerListeners answered: an upper bound on the
// time some listener was missing.
func (r *recorder) Window() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first, last time.Time
	for _, c := range r.calls {
		switch c.action {
		case "DeleteLoadBalancerListeners":
			if first.IsZero() || c.start.Before(first) {
				first = c.start
			}
		case "CreateLoadBalancerListeners":
			if c.end.After(last) {
				last = c.end
			}
		}
	}
	if first.IsZero() || last.IsZero() {
		return 0
	}
	return last.Sub(first)
}

// uploadCert makes a self-signed certificate and uploads it to moto's IAM
// with the aws CLI, as an operator would; it returns the ARN.
func uploadCert(b *testing.B, dir, motoURL string) string {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench.example.com"},
		DNSNames: []string{"bench.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("aws", "--endpoint-url", motoURL, "iam", "upload-server-certificate",
		"--server-certificate-name", "bench", "--certificate-body", "file://"+certPath, "--private-key", "file://"+keyPath)
	cmd.Env = append(os.Environ(), awstest.Env(motoURL)...)
	cmd.Env = append(cmd.Env, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("upload certificate: %v %s", err, out)
	}
	var res struct {
		ServerCertificateMetadata struct{ Arn string }
	}
	if err := json.Unmarshal(out, &res); err != nil || res.ServerCertificateMetadata.Arn == "" {
		b.Fatalf("upload certificate: unexpected answer %s", out)
	}
	return res.ServerCertificateMetadata.Arn
}

func moduleRoot(b *testing.B) string {
	b.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
