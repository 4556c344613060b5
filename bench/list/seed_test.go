package listbench

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
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

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	s3store "github.com/oops-deploy/oops/store/s3"
)

// layout is a store to seed: n artifacts (tiny bodies) of releases
// 0..n-1, the first indexed of them in index.json, the first meta of
// them with a metadata object. Releases with metadata beyond indexed were
// published since the index was last written (by this oops, which no
// longer rewrites it on publish); those with neither are bare zips of
// other CI.
type layout struct {
	n, indexed, meta int
	// etags: the index is a format 2 snapshot, as List compacts: it
	// records the ETag of each entry's artifact (older oops wrote none).
	etags bool
}

var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func rel(i int) release.Release {
	sha := commit(i)
	return release.Release{
		Commit: sha, App: app, Key: release.Key(app, sha, ".zip"), Size: 3, SHA256: strings.Repeat("ab", 32),
		Published: base.Add(time.Duration(i) * time.Minute), Publisher: "ci@runner",
		Author: "Ada Lovelace", AuthorEmail: "ada@example.com", Subject: fmt.Sprintf("change number %d", i),
		CommitTime: base.Add(time.Duration(i) * time.Minute), Branch: "main",
	}
}

// objects is what a layout holds, key -> body. The index object's format
// is store/index.go's; if it drifts, TestListRequests sees bare releases
// and fails.
func (l layout) objects(etagOf func(key string, body []byte) string) (map[string][]byte, error) {
	objs := make(map[string][]byte, l.n+l.meta+1)
	type indexFile struct {
		Version       int                        `json:"version"`
		Releases      map[string]release.Release `json:"releases"`
		Format        int                        `json:"format,omitempty"`
		ArtifactETags map[string]string          `json:"artifact_etags,omitempty"`
	}
	idx := indexFile{Version: 1, Releases: map[string]release.Release{}}
	if l.etags {
		idx.Format, idx.ArtifactETags = 2, map[string]string{}
	}
	for i := range l.n {
		r := rel(i)
		objs[r.Key] = []byte("zip")
		if i < l.meta {
			data, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				return nil, err
			}
			objs[store.ReleaseMetaKey(app, r.Commit)] = data
		}
		if i < l.indexed && l.etags {
			idx.ArtifactETags[r.Commit] = etagOf(r.Key, objs[r.Key])
		}
		if i < l.indexed {
			idx.Releases[r.Commit] = r
		}
	}
	if l.indexed > 0 {
		data, err := json.Marshal(idx)
		if err != nil {
			return nil, err
		}
		objs[store.IndexKey(app)] = data
	}
	return objs, nil
}

// seedS3 creates bucket with layout l: many concurrent PutObjects.
func seedS3(tb testing.TB, bucket string, l layout) {
	tb.Helper()
	ctx := context.Background()
	client := s3store.NewClient(awstest.Config(moto.URL))
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		tb.Fatal(err)
	}
	// moto's ETag of a single-part object is the MD5 of its body, as S3's.
	objs, err := l.objects(func(_ string, body []byte) string { return md5ETag(body) })
	if err != nil {
		tb.Fatal(err)
	}
	type job struct {
		key  string
		body []byte
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 24 {
		wg.Go(func() {
			for j := range jobs {
				_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(j.key), Body: bytes.NewReader(j.body)})
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for k, v := range objs {
		jobs <- job{k, v}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		tb.Fatalf("seed: %v", firstErr)
	}
}

// seedDir writes layout l into a directory store's folder as plain files
// (what the store keeps them as), without the store's locking.
func seedDir(tb testing.TB, root string, l layout, etagOf func(key string) string) {
	tb.Helper()
	objs, err := l.objects(func(string, []byte) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	idx := objs[store.IndexKey(app)]
	delete(objs, store.IndexKey(app))
	write := func(key string, body []byte) {
		p := filepath.Join(root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for k, v := range objs {
		write(k, v)
	}
	if idx == nil {
		return
	}
	if l.etags {
		// The directory store's ETags come from the file: known once
		// written.
		var f map[string]any
		if err := json.Unmarshal(idx, &f); err != nil {
			tb.Fatal(err)
		}
		tags := map[string]string{}
		for i := range l.indexed {
			tags[commit(i)] = etagOf(rel(i).Key)
		}
		f["artifact_etags"] = tags
		if idx, err = json.Marshal(f); err != nil {
			tb.Fatal(err)
		}
	}
	write(store.IndexKey(app), idx)
}

// md5ETag is S3's ETag of a single-part object.
func md5ETag(body []byte) string {
	sum := md5.Sum(body)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}
