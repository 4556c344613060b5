// Package storetest is the contract every store.Store backend passes: the
// same behaviour on a directory and on S3, so everything built on the
// interface (the release index, history, the lock) works on both.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/store"
)

// Run checks a backend. open returns a new, empty store for each subtest
// (subtests run in parallel).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateThenGet", testCreateGet},
		{"CreateRefusesExisting", testCreateExists},
		{"ConcurrentCreateOneWins", testConcurrentCreate},
		{"ReplaceIsCompareAndSwap", testReplace},
		{"ConcurrentReplaceLosesNoUpdate", testConcurrentReplace},
		{"Missing", testMissing},
		{"List", testList},
		{"ListStop", testListStop},
		{"Delete", testDelete},
		{"InvalidInput", testInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func create(t *testing.T, s store.Store, key, body string) store.Object {
	t.Helper()
	o, err := s.Create(ctx(t), key, strings.NewReader(body), int64(len(body)), nil)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return o
}

func read(t *testing.T, s store.Store, key string) (string, store.Object) {
	t.Helper()
	rc, o, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return string(b), o
}

func testCreateGet(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Minute)
	meta := map[string]string{"sha256": "abc123", "oops-commit": "0123456789"}
	body := "release bytes"
	created, err := s.Create(ctx(t), "app/app-1.zip", strings.NewReader(body), int64(len(body)), meta)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.Key != "app/app-1.zip" || created.Size != int64(len(body)) || created.ETag == "" {
		t.Errorf("Create returned %+v, want key, size %d and an etag", created, len(body))
	}
	got, obj := read(t, s, "app/app-1.zip")
	if got != body {
		t.Errorf("Get body = %q, want %q", got, body)
	}
	st, err := s.Stat(ctx(t), "app/app-1.zip")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	for name, o := range map[string]store.Object{"Get": obj, "Stat": st} {
		if o.Key != "app/app-1.zip" || o.Size != int64(len(body)) || o.ETag != created.ETag {
			t.Errorf("%s = %+v, want key, size %d, etag %q", name, o, len(body), created.ETag)
		}
		if o.Modified.Before(before) || o.Modified.After(time.Now().Add(time.Minute)) {
			t.Errorf("%s modified = %v, want about now", name, o.Modified)
		}
		for k, v := range meta {
			if o.Meta[k] != v {
				t.Errorf("%s meta[%q] = %q, want %q (all: %v)", name, k, o.Meta[k], v, o.Meta)
			}
		}
	}
	// Size -1 means unknown: the body is read to its end.
	if _, err := s.Create(ctx(t), "app/unknown-size", strings.NewReader("xyz"), -1, nil); err != nil {
		t.Fatalf("Create with unknown size: %v", err)
	}
	if got, o := read(t, s, "app/unknown-size"); got != "xyz" || o.Size != 3 {
		t.Errorf("unknown-size object = %q (size %d), want xyz (3)", got, o.Size)
	}
}

func testCreateExists(t *testing.T, s store.Store) {
	first := create(t, s, "k", "first")
	_, err := s.Create(ctx(t), "k", strings.NewReader("second"), 6, map[string]string{"x": "y"})
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create: err = %v, want ErrExists", err)
	}
	got, o := read(t, s, "k")
	if got != "first" || o.ETag != first.ETag || o.Meta["x"] != "" {
		t.Errorf("after refused Create: body %q etag %q meta %v, want the first version untouched", got, o.ETag, o.Meta)
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	const n = 12
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   []string
		others []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf("writer %d", i)
			<-start
			_, err := s.Create(ctx(t), "race/app.zip", strings.NewReader(body), int64(len(body)), map[string]string{"writer": strconv.Itoa(i)})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins = append(wins, body)
			} else if !errors.Is(err, store.ErrExists) {
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("losers must see ErrExists, got %v", others)
	}
	if len(wins) != 1 {
		t.Fatalf("%d concurrent Creates succeeded (%q), want exactly 1", len(wins), wins)
	}
	got, o := read(t, s, "race/app.zip")
	if got != wins[0] {
		t.Errorf("stored %q, want the winner's %q", got, wins[0])
	}
	if "writer "+o.Meta["writer"] != got {
		t.Errorf("metadata says writer %q but body is %q: metadata from a loser", o.Meta["writer"], got)
	}
}

func testReplace(t *testing.T, s store.Store) {
	v1, err := s.Create(ctx(t), "app/.oops/index.json", strings.NewReader("v1"), 2, map[string]string{"m": "1"})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Replace(ctx(t), "app/.oops/index.json", []byte("v2 longer"), v1.ETag)
	if err != nil {
		t.Fatalf("Replace with current etag: %v", err)
	}
	if v2.ETag == "" || v2.ETag == v1.ETag || v2.Size != 9 {
		t.Errorf("Replace returned %+v, want a new etag and size 9", v2)
	}
	_, err = s.Replace(ctx(t), "app/.oops/index.json", []byte("stale"), v1.ETag)
	if !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("Replace with stale etag: err = %v, want ErrPrecondition", err)
	}
	got, o := read(t, s, "app/.oops/index.json")
	if got != "v2 longer" || o.ETag != v2.ETag {
		t.Errorf("after refused Replace: %q etag %q, want v2 untouched (etag %q)", got, o.ETag, v2.ETag)
	}
	if len(o.Meta) != 0 {
		t.Errorf("Replace kept metadata %v; a replaced object has none (as S3 PutObject)", o.Meta)
	}
	if _, err := s.Replace(ctx(t), "nothing-here", []byte("x"), v2.ETag); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Replace of a missing key: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Replace(ctx(t), "app/.oops/index.json", []byte("x"), ""); err == nil {
		t.Errorf("Replace with an empty etag succeeded; it must be refused")
	}
}

// testConcurrentReplace runs read-modify-write loops that each add one to a
// counter: compare-and-swap must not lose a single increment.
func testConcurrentReplace(t *testing.T, s store.Store) {
	const workers, each = 4, 3
	create(t, s, "counter", "0")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				for attempt := 0; ; attempt++ {
					if attempt > 200 {
						errs <- errors.New("too many CAS retries")
						return
					}
					rc, o, err := s.Get(ctx(t), "counter")
					if err != nil {
						errs <- err
						return
					}
					b, _ := io.ReadAll(rc)
					rc.Close()
					n, _ := strconv.Atoi(string(b))
					_, err = s.Replace(ctx(t), "counter", []byte(strconv.Itoa(n+1)), o.ETag)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrPrecondition) {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, _ := read(t, s, "counter"); got != strconv.Itoa(workers*each) {
		t.Errorf("counter = %s after %d CAS increments: updates were lost", got, workers*each)
	}
}

func testMissing(t *testing.T, s store.Store) {
	if _, _, err := s.Get(ctx(t), "app/none.zip"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get missing: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx(t), "app/none.zip"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat missing: err = %v, want ErrNotFound", err)
	}
	n := 0
	if err := s.List(ctx(t), "app/", store.ListOptions{}, func(store.Object) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List of an empty store: %d objects, err %v; want none, no error", n, err)
	}
}

func listKeys(t *testing.T, s store.Store, prefix string, opts store.ListOptions) []string {
	t.Helper()
	var keys []string
	err := s.List(ctx(t), prefix, opts, func(o store.Object) error {
		if o.Size <= 0 || o.ETag == "" || o.Modified.IsZero() {
			t.Errorf("List gave %+v: want size, etag and modified time", o)
		}
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q, %+v): %v", prefix, opts, err)
	}
	return keys
}

func testList(t *testing.T, s store.Store) {
	// "-" sorts before "/" and "." before both: a walk of folders would
	// give another order than the byte order S3 lists in.
	keys := []string{"app/app/x", "app/app-2.zip", "app/app-1.zip", "app/app.zip", "app/.oops/index.json", "apple/app-1.zip", "other/app-1.zip", "app-top"}
	for _, k := range keys {
		create(t, s, k, "body of "+k)
	}
	tests := []struct {
		prefix string
		opts   store.ListOptions
		want   []string
	}{
		{"app/", store.ListOptions{}, []string{"app/.oops/index.json", "app/app-1.zip", "app/app-2.zip", "app/app.zip", "app/app/x"}},
		{"app/app-", store.ListOptions{}, []string{"app/app-1.zip", "app/app-2.zip"}},
		{"app", store.ListOptions{}, []string{"app-top", "app/.oops/index.json", "app/app-1.zip", "app/app-2.zip", "app/app.zip", "app/app/x", "apple/app-1.zip"}},
		{"app/", store.ListOptions{Limit: 2}, []string{"app/.oops/index.json", "app/app-1.zip"}},
		{"app/", store.ListOptions{StartAfter: "app/app-1.zip"}, []string{"app/app-2.zip", "app/app.zip", "app/app/x"}},
		{"app/", store.ListOptions{StartAfter: "app/app-1.zip", Limit: 1}, []string{"app/app-2.zip"}},
		{"", store.ListOptions{}, []string{"app-top", "app/.oops/index.json", "app/app-1.zip", "app/app-2.zip", "app/app.zip", "app/app/x", "apple/app-1.zip", "other/app-1.zip"}},
		{"nope/", store.ListOptions{}, nil},
	}
	for _, tc := range tests {
		got := listKeys(t, s, tc.prefix, tc.opts)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("List(%q, %+v) =\n  %q\nwant\n  %q", tc.prefix, tc.opts, got, tc.want)
		}
	}
	// Listed objects agree with Stat.
	_ = s.List(ctx(t), "app/app-1", store.ListOptions{}, func(o store.Object) error {
		st, err := s.Stat(ctx(t), o.Key)
		if err != nil || st.ETag != o.ETag || st.Size != o.Size || !st.Modified.Equal(o.Modified) {
			t.Errorf("List gave %+v, Stat gave %+v (err %v)", o, st, err)
		}
		return nil
	})
}

func testListStop(t *testing.T, s store.Store) {
	for i := range 5 {
		create(t, s, fmt.Sprintf("p/%d", i), "x")
	}
	var seen []string
	err := s.List(ctx(t), "p/", store.ListOptions{}, func(o store.Object) error {
		seen = append(seen, o.Key)
		if len(seen) == 2 {
			return store.ErrStop
		}
		return nil
	})
	if err != nil || len(seen) != 2 {
		t.Errorf("List stopped with ErrStop: seen %q err %v, want 2 keys and no error", seen, err)
	}
	boom := errors.New("boom")
	err = s.List(ctx(t), "p/", store.ListOptions{}, func(store.Object) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("List with failing fn: err = %v, want it passed through", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	v1 := create(t, s, "lock", "me")
	v2, err := s.Replace(ctx(t), "lock", []byte("you"), v1.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx(t), "lock", v1.ETag); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("Delete with stale etag: err = %v, want ErrPrecondition", err)
	}
	if got, _ := read(t, s, "lock"); got != "you" {
		t.Fatalf("refused Delete changed the object to %q", got)
	}
	if err := s.Delete(ctx(t), "lock", v2.ETag); err != nil {
		t.Fatalf("Delete with current etag: %v", err)
	}
	if _, err := s.Stat(ctx(t), "lock"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after Delete, Stat err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx(t), "lock", ""); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
	if err := s.Delete(ctx(t), "lock", v2.ETag); err != nil {
		t.Errorf("Delete with etag of a missing key: %v, want nil", err)
	}
	create(t, s, "plain", "x")
	if err := s.Delete(ctx(t), "plain", ""); err != nil {
		t.Fatalf("unconditional Delete: %v", err)
	}
	if _, err := s.Stat(ctx(t), "plain"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after unconditional Delete, Stat err = %v, want ErrNotFound", err)
	}
	// The key is free again.
	create(t, s, "plain", "again")
}

func testInvalid(t *testing.T, s store.Store) {
	for _, key := range []string{"", "../escape", "a/../b", "/abs", "a//b", "dir/", `a\b`} {
		if _, err := s.Create(ctx(t), key, strings.NewReader("x"), 1, nil); err == nil {
			t.Errorf("Create(%q) succeeded; want an invalid key error", key)
		}
	}
	_, err := s.Create(ctx(t), "k", bytes.NewReader([]byte("x")), 1, map[string]string{"author": "Zoë"})
	if err == nil {
		t.Errorf("Create with non-ASCII metadata succeeded; want it refused")
	}
	if _, err := s.Stat(ctx(t), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused Create left an object behind (Stat err = %v)", err)
	}
}
