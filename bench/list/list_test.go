// Package listbench measures `oops list` on S3 (moto): the number of S3
// requests, which must grow with pages of 1000 releases and not with
// releases, and the wall time next to the original tool's
// `aws s3 ls --recursive | sort -r`. It also times `oops --help` and
// `oops list` on a directory store.
//
//	go test ./bench/list/                                   # request count, N=1200 (part of make test)
//	go test -run '^$' -bench . -benchtime 1x ./bench/list/  # figures, N=10000 (make bench)
package listbench

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oops-deploy/oops/cmd"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	s3store "github.com/oops-deploy/oops/store/s3"
)

const app = "app"

// moto is shared by the package's tests and benchmarks.
var moto awstest.Shared

func TestMain(m *testing.M) { os.Exit(moto.Main(m)) }

func commit(i int) string {
	h := sha1.Sum([]byte(fmt.Sprint("release ", i)))
	return hex.EncodeToString(h[:])
}

// seed fills a new bucket with n releases in the original layout: the
// first half published by oops (in the index, with metadata), the rest
// bare zips from "other CI". Tiny bodies, many concurrent PutObjects.
func seed(tb testing.TB, bucket string, n int) {
	tb.Helper()
	ctx := context.Background()
	client := s3store.NewClient(awstest.Config(moto.URL))
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		tb.Fatal(err)
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 24 {
		wg.Go(func() {
			for i := range jobs {
				_, err := client.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(release.Key(app, commit(i), ".zip")),
					Body: strings.NewReader("zip"),
				})
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		tb.Fatalf("seed: %v", firstErr)
	}
	// The index object publish maintains, for the first half. Its format
	// is store/index.go's; if it drifts, TestListRequests sees bare
	// releases and fails.
	type indexFile struct {
		Version  int                        `json:"version"`
		Releases map[string]release.Release `json:"releases"`
	}
	idx := indexFile{Version: 1, Releases: map[string]release.Release{}}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n / 2 {
		sha := commit(i)
		idx.Releases[sha] = release.Release{
			Commit: sha, App: app, Key: release.Key(app, sha, ".zip"), Size: 3, SHA256: strings.Repeat("ab", 32),
			Published: base.Add(time.Duration(i) * time.Minute), Publisher: "ci@runner",
			Author: "Ada Lovelace", AuthorEmail: "ada@example.com", Subject: fmt.Sprintf("change number %d", i),
			CommitTime: base.Add(time.Duration(i) * time.Minute), Branch: "main",
		}
	}
	data, _ := json.Marshal(idx)
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(store.IndexKey(app)), Body: bytes.NewReader(data)}); err != nil {
		tb.Fatal(err)
	}
}

// runList runs `oops list ARGS` in-process against endpoint and returns
// stdout.
func runList(t *testing.T, endpoint, bucket string, args ...string) string {
	t.Helper()
	awstest.Setenv(t, endpoint)
	wd := t.TempDir()
	rc := fmt.Sprintf(`{"application-name": %q, "s3-bucket": %q}`, app, bucket)
	if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	f := cmd.NewFactory("bench")
	f.IO = &cmd.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	f.Getwd = func() (string, error) { return wd, nil }
	if code := cmd.Main(f, append([]string{"list"}, args...)); code != 0 {
		t.Fatalf("oops list exited %d: %s", code, errOut.String())
	}
	return out.String()
}

// TestListRequests: `oops list` over N releases makes at most
// ceil(N/1000)+5 S3 requests, with or without --limit.
func TestListRequests(t *testing.T) {
	moto.Need(t)
	const n = 1200 // two LIST pages; small enough for make test
	bucket := fmt.Sprintf("list-requests-%d", os.Getpid())
	seed(t, bucket, n)
	p := faultproxy.New(moto.URL)
	defer p.Close()
	budget := (n+999)/1000 + 5

	out := runList(t, p.URL, bucket, "--json")
	var rels []release.Release
	if err := json.Unmarshal([]byte(out), &rels); err != nil {
		t.Fatal(err)
	}
	if len(rels) != n {
		t.Fatalf("listed %d releases, want %d", len(rels), n)
	}
	bare := 0
	for _, r := range rels {
		if r.Bare {
			bare++
		}
	}
	if bare != n/2 {
		t.Errorf("%d bare releases, want %d (the index metadata was not used)", bare, n/2)
	}
	if got := p.Count(""); got > budget {
		t.Errorf("oops list over %d releases made %d S3 requests %v; budget ceil(N/1000)+5 = %d", n, got, p.Calls(), budget)
	}
	t.Logf("oops list --json over %d releases: %d S3 requests (%d LIST, %d GET); budget %d", n, p.Count(""), p.Count("LIST"), p.Count("GET"), budget)

	p.Clear()
	out = runList(t, p.URL, bucket, "--limit", "10")
	if lines := strings.Count(out, "\n"); lines != 10 {
		t.Errorf("--limit 10 printed %d lines", lines)
	}
	if got := p.Count(""); got > budget {
		t.Errorf("oops list --limit 10 made %d requests, budget %d", got, budget)
	}
}

// goBuild builds the oops binary once per benchmark.
func goBuild(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "oops")
	c := exec.Command("go", "build", "-o", bin, "github.com/oops-deploy/oops/cmd/oops")
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		b.Fatalf("go build: %v", err)
	}
	return bin
}

// timeRun runs a command and returns its wall time.
func timeRun(b *testing.B, env []string, dir string, name string, args ...string) (time.Duration, []byte) {
	b.Helper()
	c := exec.Command(name, args...)
	c.Env, c.Dir = env, dir
	var stderr bytes.Buffer
	c.Stderr = &stderr
	start := time.Now()
	out, err := c.Output()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return d, out
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkList10k: oops list vs `aws s3 ls --recursive | sort -r` on the
// same 10,000-release bucket, alternating runs, medians and their ratio.
func BenchmarkList10k(b *testing.B) {
	moto.Need(b)
	const n, runs = 10000, 5
	bucket := fmt.Sprintf("list-bench-%d", os.Getpid())
	start := time.Now()
	seed(b, bucket, n)
	b.Logf("seeded %d releases in %s", n, time.Since(start).Round(time.Millisecond))
	bin := goBuild(b)
	wd := b.TempDir()
	rc := fmt.Sprintf(`{"application-name": %q, "s3-bucket": %q}`, app, bucket)
	if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), awstest.Env(moto.URL)...)

	// Requests, counted through the proxy.
	p := faultproxy.New(moto.URL)
	defer p.Close()
	_, out := timeRun(b, append(os.Environ(), awstest.Env(p.URL)...), wd, bin, "list")
	if lines := bytes.Count(out, []byte("\n")); lines != n {
		b.Fatalf("oops list printed %d lines, want %d", lines, n)
	}
	requests := p.Count("")

	_, haveAWS := exec.LookPath("aws")
	var oopsT, awsT []time.Duration
	for b.Loop() {
		for range runs {
			d, _ := timeRun(b, env, wd, bin, "list")
			oopsT = append(oopsT, d)
			if haveAWS == nil {
				d, out := timeRun(b, env, wd, "bash", "-c", fmt.Sprintf("aws s3 ls --recursive s3://%s/%s/ | sort -r", bucket, app))
				if lines := bytes.Count(out, []byte("\n")); lines < n {
					b.Fatalf("aws s3 ls listed %d lines, want >= %d", lines, n)
				}
				awsT = append(awsT, d)
			}
		}
	}
	b.ReportMetric(float64(requests), "s3-requests")
	b.ReportMetric(ms(median(oopsT)), "oops-list-ms")
	msg := fmt.Sprintf("oops list over %d releases: %d S3 requests (budget %d), median %.0f ms", n, requests, (n+999)/1000+5, ms(median(oopsT)))
	if haveAWS == nil {
		ratio := float64(median(oopsT)) / float64(median(awsT))
		b.ReportMetric(ms(median(awsT)), "aws-ls-ms")
		b.ReportMetric(ratio, "oops/aws")
		msg += fmt.Sprintf("; aws s3 ls --recursive | sort -r: median %.0f ms; ratio oops/aws = %.2f (%d runs each)", ms(median(awsT)), ratio, len(oopsT))
	} else {
		msg += "; aws CLI not installed, no comparison (scripts/deps.sh bench installs it)"
	}
	fmt.Println(msg)
}

// BenchmarkCLIStartup: wall time of `oops --help` and of `oops list` on a
// directory store with 50 releases (target: under 20 ms each).
func BenchmarkCLIStartup(b *testing.B) {
	const runs = 30
	bin := goBuild(b)
	wd := b.TempDir()
	if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(`{"application-name": "app", "store": "releases"}`), 0o644); err != nil {
		b.Fatal(err)
	}
	x := store.NewIndex(dir.New(filepath.Join(wd, "releases")), app)
	for i := range 50 {
		body := fmt.Sprint("zip ", i)
		_, _, err := x.Publish(context.Background(), store.PublishInput{
			Commit: commit(i), Ext: ".zip", Body: strings.NewReader(body), Size: int64(len(body)),
			Info: release.Info{Author: "Ada", Subject: fmt.Sprint("change ", i)}, Now: time.Now().Add(time.Duration(i) * time.Minute),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	env := append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
	var help, list []time.Duration
	for b.Loop() {
		for range runs {
			d, _ := timeRun(b, env, wd, bin, "--help")
			help = append(help, d)
			d, out := timeRun(b, env, wd, bin, "list")
			if bytes.Count(out, []byte("\n")) != 50 {
				b.Fatalf("oops list printed %q", out)
			}
			list = append(list, d)
		}
	}
	b.ReportMetric(ms(median(help)), "help-ms")
	b.ReportMetric(ms(median(list)), "list-dir-ms")
	fmt.Printf("oops --help: median %.1f ms; oops list (directory store, 50 releases): median %.1f ms (target < 20 ms; %d runs each)\n",
		ms(median(help)), ms(median(list)), len(help))
}
