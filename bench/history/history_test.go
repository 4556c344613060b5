// Package historybench measures `oops history --limit 20` on S3 (moto):
// requests must depend on the limit, not on how long the history is.
//
//	go test ./bench/history/                                   # request count, N=500 (part of make test)
//	go test -run '^$' -bench . -benchtime 1x ./bench/history/  # figures, N=10000 (make bench)
package historybench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	s3store "github.com/oops-deploy/oops/store/s3"
)

const app = "app"

// moto is shared by the package's tests and benchmarks.
var moto awstest.Shared

func TestMain(m *testing.M) { os.Exit(moto.Main(m)) }

// seed writes n events into a new bucket, one a minute, the way
// store.AppendEvent lays them out, with many concurrent PutObjects.
func seed(tb testing.TB, bucket string, n int) {
	tb.Helper()
	ctx := context.Background()
	client := s3store.NewClient(awstest.Config(moto.URL))
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		tb.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 24 {
		wg.Go(func() {
			for i := range jobs {
				ev := release.Event{
					Time: base.Add(time.Duration(i) * time.Minute), Action: release.ActionRollback, App: app,
					From: release.Side{Color: release.Blue, Commit: strings.Repeat("a", 40)},
					To:   release.Side{Color: release.Green, Commit: strings.Repeat("b", 40)},
					Who:  "arn:aws:iam::123456789012:user/ada", OSUser: "ada", Host: "laptop",
					Reason: fmt.Sprintf("event %d", i), Result: release.ResultOK, DurationMS: 812,
				}
				key := store.EventKey(app, ev.Time, fmt.Sprintf("%012x", i))
				data, _ := json.Marshal(ev)
				_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
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
}

// runHistory runs `oops history ARGS` in-process against endpoint and
// returns stdout.
func runHistory(tb testing.TB, endpoint, bucket string, args ...string) string {
	tb.Helper()
	awstest.Setenv(tb, endpoint)
	wd := tb.TempDir()
	rc := fmt.Sprintf(`{"application-name": %q, "s3-bucket": %q}`, app, bucket)
	if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
		tb.Fatal(err)
	}
	var out, errOut bytes.Buffer
	f := cmd.NewFactory("bench")
	f.IO = &cmd.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	f.Getwd = func() (string, error) { return wd, nil }
	if code := cmd.Main(f, append([]string{"history"}, args...)); code != 0 {
		tb.Fatalf("oops history exited %d: %s", code, errOut.String())
	}
	return out.String()
}

// checkPage runs `oops history --limit 20 --json` over n events and checks
// it shows the 20 newest in order with one listing and 20 reads.
func checkPage(tb testing.TB, bucket string, n int) (requests int, took time.Duration) {
	p := faultproxy.New(moto.URL)
	defer p.Close()
	start := time.Now()
	out := runHistory(tb, p.URL, bucket, "--limit", "20", "--json")
	took = time.Since(start)
	var evs []release.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		tb.Fatal(err)
	}
	if len(evs) != 20 {
		tb.Fatalf("got %d events, want 20", len(evs))
	}
	for i, ev := range evs {
		if want := fmt.Sprintf("event %d", n-1-i); ev.Reason != want {
			tb.Fatalf("event %d is %q, want %q (newest first)", i, ev.Reason, want)
		}
	}
	if l, g, all := p.Count("LIST"), p.Count("GET"), p.Count(""); l != 1 || g != 20 || all != 21 {
		tb.Errorf("oops history --limit 20 over %d events: %d requests (%d LIST, %d GET), want 1 LIST + 20 GET", n, all, l, g)
	}
	return p.Count(""), took
}

// TestHistoryRequests: a page of 20 costs 1 listing and 20 reads, however
// many events there are.
func TestHistoryRequests(t *testing.T) {
	moto.Need(t)
	const n = 500
	bucket := fmt.Sprintf("history-requests-%d", os.Getpid())
	seed(t, bucket, n)
	requests, _ := checkPage(t, bucket, n)
	t.Logf("oops history --limit 20 over %d events: %d S3 requests", n, requests)
}

// BenchmarkHistory10k: `oops history --limit 20` over 10,000 events.
func BenchmarkHistory10k(b *testing.B) {
	moto.Need(b)
	const n = 10000
	bucket := fmt.Sprintf("history-bench-%d", os.Getpid())
	start := time.Now()
	seed(b, bucket, n)
	b.Logf("seeded %d events in %s", n, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	for b.Loop() {
		requests, took := checkPage(b, bucket, n)
		b.ReportMetric(float64(requests), "requests/op")
		b.Logf("oops history --limit 20 over %d events: %d S3 requests (1 LIST + 20 GET), %s", n, requests, took.Round(time.Millisecond))
	}
}
