package listbench

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/cmd"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/store/dir"
)

// publishSizes are the store sizes BenchmarkPublish seeds;
// OOPS_PUBLISH_SIZES=10,1000 narrows them (100,000 takes minutes to seed
// on moto).
func publishSizes(b *testing.B) []int {
	sizes := []int{10, 1000, 10000, 100000}
	if env := os.Getenv("OOPS_PUBLISH_SIZES"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("OOPS_PUBLISH_SIZES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// artifact is a small valid zip, as publish validates archives.
func artifact(b *testing.B, path string) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("index.html")
	if err != nil {
		b.Fatal(err)
	}
	fmt.Fprint(w, strings.Repeat("<p>hello</p>\n", 100))
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

// publishOnce runs `oops publish` in-process in wd and returns its wall
// time.
func publishOnce(b *testing.B, wd, sha string) time.Duration {
	b.Helper()
	var out, errOut bytes.Buffer
	f := cmd.NewFactory("bench")
	f.IO = &cmd.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	f.Getwd = func() (string, error) { return wd, nil }
	start := time.Now()
	code := cmd.Main(f, []string{"publish", "release.zip", "--commit", sha})
	d := time.Since(start)
	if code != 0 || !strings.Contains(out.String(), "published") {
		b.Fatalf("oops publish exited %d: %s%s", code, out.String(), errOut.String())
	}
	return d
}

// fileState is what a directory store's files are, to tell what a
// publish wrote.
func fileState(b *testing.B, root string) map[string][2]int64 {
	m := map[string][2]int64{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = [2]int64{fi.Size(), fi.ModTime().UnixNano()}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkPublish: `oops publish` (in-process, so process start-up does
// not hide the store's cost) of a new commit into stores of 10 to 100,000
// releases, S3 (moto) and directory, side by side: requests and bytes
// (S3: HTTP bodies both ways, metered; directory: bytes of the files it
// wrote) and wall time, medians. Target: at 100,000 within 1.5x of at 10,
// in bytes and time.
func BenchmarkPublish(b *testing.B) {
	moto.Need(b)
	const runs = 9
	sizes := publishSizes(b)
	type result struct {
		n               int
		requests, bytes int64
		byAction        string
		wall            time.Duration
		seeded          string
	}
	results := map[string][]result{}
	for _, backend := range []string{"s3", "dir"} {
		for si, n := range sizes {
			wd := b.TempDir()
			artifact(b, filepath.Join(wd, "release.zip"))
			l := layout{n: n, indexed: n, meta: n, etags: true} // compacted: every release in the snapshot
			start := time.Now()
			var m *meter
			root := filepath.Join(wd, "releases")
			switch backend {
			case "s3":
				bucket := fmt.Sprintf("publish-bench-%d-%d", os.Getpid(), si)
				if n > 10000 {
					// moto takes about 5 ms a PutObject: the artifacts and
					// the snapshot only. A publish reads neither the
					// metadata objects nor the snapshot.
					l.meta, l.etags = 0, false
				}
				seedS3(b, bucket, l)
				m = newMeter(moto.URL)
				awstest.Setenv(b, m.URL)
				rc := fmt.Sprintf(`{"application-name": %q, "s3-bucket": %q}`, app, bucket)
				if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
					b.Fatal(err)
				}
			case "dir":
				s := dir.New(root)
				seedDir(b, root, l, func(key string) string {
					o, err := s.Stat(context.Background(), key)
					if err != nil {
						b.Fatal(err)
					}
					return o.ETag
				})
				rc := fmt.Sprintf(`{"application-name": %q, "store": "releases"}`, app)
				if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			seeded := time.Since(start).Round(time.Second).String()
			if l.meta == 0 {
				seeded += ", artifacts and snapshot only"
			}
			var walls []time.Duration
			var reqs, byts []int64
			var actions string
			for r := range runs {
				sha := commit(n + 1 + r)
				if m != nil {
					m.reset()
				}
				var before map[string][2]int64
				if backend == "dir" && r == 0 {
					before = fileState(b, root)
				}
				walls = append(walls, publishOnce(b, wd, sha))
				switch {
				case m != nil:
					tr := m.traffic()
					reqs, byts = append(reqs, int64(tr.requests)), append(byts, tr.sent+tr.recv)
					actions = tr.String()
				case r == 0:
					var written int64
					files := 0
					for p, st := range fileState(b, root) {
						if before[p] != st {
							written += st[0]
							files++
						}
					}
					byts = append(byts, written)
					reqs = append(reqs, int64(files))
					actions = "files written"
				}
			}
			if m != nil {
				m.Close()
			}
			results[backend] = append(results[backend], result{n: n, requests: medianInt(reqs), bytes: medianInt(byts), byAction: actions, wall: median(walls), seeded: seeded})
		}
	}
	fmt.Printf("\npublish of a new commit (%d runs each, medians; an artifact of %d bytes):\n", runs, artifactSize(b))
	fmt.Printf("  %-9s %9s %9s %11s %9s  %s\n", "store", "releases", "requests", "bytes", "wall ms", "")
	for _, backend := range []string{"s3", "dir"} {
		rs := results[backend]
		for _, r := range rs {
			what := "requests"
			if backend == "dir" {
				what = "files"
			}
			fmt.Printf("  %-9s %9d %9d %11d %9.1f  (%s %s; seeded in %s)\n", backend, r.n, r.requests, r.bytes, ms(r.wall), what, r.byAction, r.seeded)
		}
		if len(rs) > 1 {
			first, last := rs[0], rs[len(rs)-1]
			fmt.Printf("  %s: at %d releases vs %d: bytes x%.2f, time x%.2f (target: within 1.5)\n", backend, last.n, first.n,
				float64(last.bytes)/float64(first.bytes), float64(last.wall)/float64(first.wall))
			b.ReportMetric(float64(last.wall)/float64(first.wall), backend+"-time-ratio")
		}
	}
}

func medianInt(v []int64) int64 {
	ds := make([]time.Duration, len(v))
	for i, x := range v {
		ds[i] = time.Duration(x)
	}
	return int64(median(ds))
}

func artifactSize(b *testing.B) int {
	p := filepath.Join(b.TempDir(), "a.zip")
	artifact(b, p)
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return int(fi.Size())
}
