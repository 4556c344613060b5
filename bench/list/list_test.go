// Package listbench measures `oops list` and `oops publish` on S3 (moto)
// and on a directory store: requests, bytes, sequential round trips,
// time and CPU, next to the original tool's `aws s3 ls --recursive |
// sort -r`.
//
//	go test ./bench/list/                                   # request counts, N=1200 (part of make test)
//	go test -run '^$' -bench . -benchtime 1x ./bench/list/  # figures (make bench)
//
// BenchmarkPublish seeds stores of 10 to 100,000 releases by writing
// objects directly (the 100,000 case takes minutes on moto: -bench only).
// OOPS_BASELINE=path/to/an/older/oops adds that binary's figures to
// BenchmarkList10k, side by side.
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

// listBudget is what a listing of n releases may cost once the snapshot
// is of format 2: the artifact keys listed as 16 ranges, each one page per
// 1000 keys plus at most one partial page, so at most 16+ceil(n/1000)
// LISTs, and one LIST of the adoption markers; one GET for the snapshot
// and one for the marks; one GET per release published since the snapshot
// (at most 32 before a listing compacts them into a new snapshot: one PUT).
// A snapshot of older oops costs the metadata keys' 16 ranges more, once.
func listBudget(n, fresh int) (lists, gets int) {
	return 16 + (n+999)/1000 + 1, 2 + fresh
}

// TestListRequests: `oops list` over N releases makes the requests of
// listBudget, whatever N up to 16,000, in one wave of concurrent requests
// (two with releases published since the snapshot), with or without
// --limit. The first listing of a store older oops wrote also lists the
// metadata keys, asks each recent bare zip whether oops uploaded it (a
// HEAD) and rewrites the snapshot, once. More than 32 releases published
// since the snapshot are compacted into a new one, read by the next
// listing.
func TestListRequests(t *testing.T) {
	moto.Need(t)
	const n, fresh = 1200, 20 // two LIST pages in the old layout; small enough for make test
	bucket := fmt.Sprintf("list-requests-%d", os.Getpid())
	// Half published (indexed, with metadata), 20 published since the
	// index was written, the rest bare zips of other CI, uploaded just now.
	seedS3(t, bucket, layout{n: n, indexed: n / 2, meta: n/2 + fresh})
	m := newMeter(moto.URL)
	defer m.Close()
	lists, _ := listBudget(n, fresh)

	type want struct {
		lists, gets, heads, puts, rounds int
	}
	check := func(what string, releases, wantBare int, w want, args ...string) {
		t.Helper()
		m.reset()
		out := runList(t, m.URL, bucket, append([]string{"--json"}, args...)...)
		var rels []release.Release
		if err := json.Unmarshal([]byte(out), &rels); err != nil {
			t.Fatal(err)
		}
		if len(args) > 1 {
			releases = 10
		}
		if len(rels) != releases {
			t.Fatalf("%s: listed %d releases, want %d", what, len(rels), releases)
		}
		bare := 0
		for _, r := range rels {
			if r.Bare {
				bare++
			}
		}
		if wantBare >= 0 && bare != wantBare {
			t.Errorf("%s: %d bare releases, want %d (metadata not used)", what, bare, wantBare)
		}
		tr := m.traffic()
		if tr.byAction["LIST"] > w.lists || tr.byAction["GET"] != w.gets || tr.byAction["HEAD"] != w.heads || tr.byAction["PUT"] != w.puts ||
			tr.requests != tr.byAction["LIST"]+w.gets+w.heads+w.puts || (w.rounds > 0 && tr.rounds > w.rounds) {
			t.Errorf("%s over %d releases made %d requests (%s) in %d sequential round trips; want at most %d LIST, %d GET, %d HEAD, %d PUT, %d round trips",
				what, releases, tr.requests, tr, tr.rounds, w.lists, w.gets, w.heads, w.puts, w.rounds)
		}
		t.Logf("%s over %d releases: %d requests (%s), %d sequential round trips", what, releases, tr.requests, tr, tr.rounds)
	}
	barezips := n/2 - fresh
	// Wave 1, the metadata keys, the 20 metadata objects and the HEADs of
	// the bare zips (32 at a time); the rewrite.
	check("first oops list --json (a store of older oops)", n, barezips, want{lists + 16 + 2, 2 + fresh, barezips, 1, 0})
	// One wave; rounds may count a request that ended just before another
	// of the wave started as two.
	check("oops list --json", n, barezips, want{lists, 2, 0, 0, 2})
	check("oops list --limit 10", n, -1, want{lists, 2, 0, 0, 2}, "--limit", "10")

	// 40 more published since the snapshot: over the 32 a listing reads
	// one by one before it writes a new snapshot.
	client := s3store.NewClient(awstest.Config(moto.URL))
	for i := n; i < n+40; i++ {
		r := rel(i)
		data, _ := json.Marshal(r)
		for key, body := range map[string][]byte{r.Key: []byte("zip"), store.ReleaseMetaKey(app, r.Commit): data} {
			if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The wave, the reads (32 at a time: two), the new snapshot; rounds
	// counts requests that did not overlap, which reads sharing the 32
	// slots may not, whence one more.
	check("oops list, 40 published since the snapshot", n+40, barezips, want{lists, 2 + 40, 0, 1, 5})
	check("oops list after it compacted", n+40, barezips, want{lists, 2, 0, 0, 2})
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
	r := run(b, env, dir, name, args...)
	return r.wall, r.out
}

// ran is one run of a command.
type ran struct {
	wall, cpu time.Duration // cpu: user+system, of the process and what it waited for
	out       []byte
}

func run(b *testing.B, env []string, dir string, name string, args ...string) ran {
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
	return ran{wall: d, cpu: c.ProcessState.UserTime() + c.ProcessState.SystemTime(), out: out}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// lister is one way of listing the bucket, measured.
type lister struct {
	name      string
	cmd       func(front string) (env []string, name string, args []string)
	wall, cpu []time.Duration
	slowWall  []time.Duration // behind the 30 ms proxy
	traffic   traffic         // one run, metered
	slowTrips int
}

// BenchmarkList10k: oops list, next to `aws s3 ls --recursive | sort -r`
// (and an older oops with OOPS_BASELINE), on two 10,000-release buckets:
// one grown by this oops (every release with metadata, 9,980 in the
// snapshot, 20 published since) and one in the layout older versions
// wrote (half in index.json, half bare zips of other CI). Alternating
// runs, medians: wall time, CPU (user+system) and, behind a proxy that
// adds 30 ms to every request as S3's round trips would, wall time again;
// requests and sequential round trips from a metered run.
func BenchmarkList10k(b *testing.B) {
	moto.Need(b)
	const n, runs = 10000, 5
	bin := goBuild(b)
	_, awsErr := exec.LookPath("aws")
	baseline := os.Getenv("OOPS_BASELINE")
	stores := []struct {
		name string
		l    layout
	}{
		{"grown by this oops", layout{n: n, indexed: n - 20, meta: n, etags: true}},
		{"older oops's layout", layout{n: n, indexed: n / 2}},
	}
	for si, st := range stores {
		bucket := fmt.Sprintf("list-bench-%d-%d", os.Getpid(), si)
		start := time.Now()
		seedS3(b, bucket, st.l)
		b.Logf("seeded %d releases (%s) in %s", n, st.name, time.Since(start).Round(time.Millisecond))
		wd := b.TempDir()
		rc := fmt.Sprintf(`{"application-name": %q, "s3-bucket": %q}`, app, bucket)
		if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
			b.Fatal(err)
		}
		oops := func(bin string) func(string) ([]string, string, []string) {
			return func(front string) ([]string, string, []string) {
				return append(os.Environ(), awstest.Env(front)...), bin, []string{"list"}
			}
		}
		listers := []*lister{{name: "oops list", cmd: oops(bin)}}
		if baseline != "" {
			listers = append(listers, &lister{name: "baseline oops list", cmd: oops(baseline)})
		}
		if awsErr == nil {
			listers = append(listers, &lister{name: "aws s3 ls | sort -r", cmd: func(front string) ([]string, string, []string) {
				return append(os.Environ(), awstest.Env(front)...), "bash", []string{"-c", fmt.Sprintf("aws s3 ls --recursive s3://%s/%s/%s- | sort -r", bucket, app, app)}
			}})
		}
		fast := newMeter(moto.URL)
		slowProxy := faultproxy.New(moto.URL)
		slowProxy.Add(faultproxy.Rule{Action: "*", Delay: 30 * time.Millisecond})
		slow := newMeter(slowProxy.URL)
		// The first listing of a store older oops wrote also rewrites
		// its snapshot in format 2: measured apart, once.
		env, name, args := listers[0].cmd(fast.URL)
		first := run(b, env, wd, name, args...)
		firstTraffic := fast.traffic()
		for _, l := range listers {
			// Metered runs: requests, round trips; output checked.
			fast.reset()
			env, name, args := l.cmd(fast.URL)
			r := run(b, env, wd, name, args...)
			if lines := bytes.Count(r.out, []byte("\n")); lines != n {
				b.Fatalf("%s printed %d lines, want %d", l.name, lines, n)
			}
			l.traffic = fast.traffic()
			slow.reset()
			env, name, args = l.cmd(slow.URL)
			run(b, env, wd, name, args...)
			l.slowTrips = slow.traffic().rounds
		}
		for range runs { // alternating; -benchtime 1x: one round of runs
			for _, l := range listers {
				env, name, args := l.cmd(fast.URL)
				r := run(b, env, wd, name, args...)
				l.wall, l.cpu = append(l.wall, r.wall), append(l.cpu, r.cpu)
				env, name, args = l.cmd(slow.URL)
				l.slowWall = append(l.slowWall, run(b, env, wd, name, args...).wall)
			}
		}
		fast.Close()
		slow.Close()
		slowProxy.Close()
		fmt.Printf("\nlist of %d releases, S3 (moto), %s (medians of %d runs):\n", n, st.name, runs)
		fmt.Printf("  first oops list: %d requests (%s), %d sequential round trips, wall %.0f ms, CPU %.0f ms\n",
			firstTraffic.requests, firstTraffic.String(), firstTraffic.rounds, ms(first.wall), ms(first.cpu))
		fmt.Printf("  %-22s %9s %12s %24s %10s %10s %14s\n", "", "requests", "round trips", "", "wall ms", "CPU ms", "+30ms/req: ms")
		for _, l := range listers {
			fmt.Printf("  %-22s %9d %12d %24s %10.0f %10.0f %14.0f\n", l.name, l.traffic.requests, l.traffic.rounds, "("+l.traffic.String()+")",
				ms(median(l.wall)), ms(median(l.cpu)), ms(median(l.slowWall)))
		}
		if awsErr == nil {
			a := listers[len(listers)-1]
			for _, l := range listers[:len(listers)-1] {
				fmt.Printf("  %s: CPU %.1f%% of aws s3 ls | sort -r; wall %.2fx; behind +30 ms: %d sequential round trips, wall %.2fx\n", l.name,
					100*float64(median(l.cpu))/float64(median(a.cpu)), float64(median(l.wall))/float64(median(a.wall)),
					l.slowTrips, float64(median(l.slowWall))/float64(median(a.slowWall)))
			}
		} else {
			fmt.Println("  aws CLI not installed, no comparison (scripts/deps.sh bench installs it)")
		}
		if si == 0 {
			b.ReportMetric(float64(listers[0].traffic.requests), "s3-requests")
			b.ReportMetric(float64(listers[0].traffic.rounds), "round-trips")
			b.ReportMetric(ms(median(listers[0].wall)), "oops-list-ms")
			b.ReportMetric(ms(median(listers[0].cpu)), "oops-cpu-ms")
		}
	}
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
