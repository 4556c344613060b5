package store_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oops-deploy/oops/store"
)

// memStore is an in-memory Store with the same conditional-write rules as
// the real backends, so the logic built on Store is tested without I/O.
type memStore struct {
	mu    sync.Mutex
	objs  map[string]memObj
	calls map[string]int
}

type memObj struct {
	body []byte
	obj  store.Object
}

var _ store.Store = (*memStore)(nil)

func newMem() *memStore { return &memStore{objs: map[string]memObj{}, calls: map[string]int{}} }

func (m *memStore) put(key string, body []byte) store.Object {
	sum := md5.Sum(append(body, []byte(time.Now().String())...))
	o := store.Object{Key: key, Size: int64(len(body)), ETag: hex.EncodeToString(sum[:]), Modified: time.Now()}
	m.objs[key] = memObj{body: append([]byte(nil), body...), obj: o}
	return o
}

func (m *memStore) Create(_ context.Context, key string, body io.Reader, _ int64, _ map[string]string) (store.Object, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return store.Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["create"]++
	if _, ok := m.objs[key]; ok {
		return store.Object{}, store.ErrExists
	}
	return m.put(key, data), nil
}

func (m *memStore) Replace(_ context.Context, key string, body []byte, etag string) (store.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["replace"]++
	cur, ok := m.objs[key]
	if !ok {
		return store.Object{}, store.ErrNotFound
	}
	if cur.obj.ETag != etag {
		return store.Object{}, store.ErrPrecondition
	}
	return m.put(key, body), nil
}

func (m *memStore) Get(_ context.Context, key string) (io.ReadCloser, store.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["get"]++
	cur, ok := m.objs[key]
	if !ok {
		return nil, store.Object{}, store.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(cur.body)), cur.obj, nil
}

func (m *memStore) Stat(_ context.Context, key string) (store.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["stat"]++
	cur, ok := m.objs[key]
	if !ok {
		return store.Object{}, store.ErrNotFound
	}
	return cur.obj, nil
}

func (m *memStore) List(_ context.Context, prefix string, opts store.ListOptions, fn func(store.Object) error) error {
	m.mu.Lock()
	m.calls["list"]++
	var objs []store.Object
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) && k > opts.StartAfter {
			objs = append(objs, o.obj)
		}
	}
	m.mu.Unlock()
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			if err == store.ErrStop {
				return nil
			}
			return err
		}
	}
	return nil
}

func (m *memStore) Delete(_ context.Context, key, etag string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["delete"]++
	cur, ok := m.objs[key]
	if !ok {
		return nil
	}
	if etag != "" && cur.obj.ETag != etag {
		return store.ErrPrecondition
	}
	delete(m.objs, key)
	return nil
}

func (m *memStore) String() string { return "mem" }

func (m *memStore) count(op string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[op]
}
