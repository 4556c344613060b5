// Package dir is a store.Store on a local directory: the embedded default,
// no cloud needed. Objects are plain files at <root>/<key>, so a release is
// an ordinary zip you can copy out; oops's own bookkeeping (temporary files,
// per-key lock files, user metadata) lives under <root>/.oops-store/.
//
// Concurrency: every write is a temporary file that is linked (Create) or
// renamed (Replace) into place, so readers never see a partial object.
// Writers of one key serialise on an flock'ed lock file, which makes Create,
// Replace and Delete compare-and-swap across processes; Create also uses
// link(2), which refuses an existing name, so it stays exclusive even against
// writers that do not take the lock.
package dir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oops-deploy/oops/store"
)

// Internal is the reserved top-level folder for oops's bookkeeping. Keys
// may not start with it.
const Internal = ".oops-store"

// Store keeps objects in a directory tree.
type Store struct {
	root string
}

var _ store.Store = (*Store)(nil)

// New returns a store rooted at root. Nothing is created until the first
// write, so reading a store that was never written is not an error.
func New(root string) *Store { return &Store{root: filepath.Clean(root)} }

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

// String names the store for messages.
func (s *Store) String() string { return s.root }

// path maps a key to its file, refusing keys that could escape the root or
// collide with the bookkeeping folder.
func (s *Store) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func checkKey(key string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	if first, _, _ := strings.Cut(key, "/"); first == Internal {
		return fmt.Errorf("invalid key %q: %s is reserved for oops's bookkeeping", key, Internal)
	}
	return nil
}

// internal returns a path under the bookkeeping folder.
func (s *Store) internal(parts ...string) string {
	return filepath.Join(append([]string{s.root, Internal}, parts...)...)
}

// keyName is a flat file name for a key: keys "a" and "a/b" can both have
// lock files without one being a folder of the other.
func keyName(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:16])
}

// sidecar holds an object's user metadata. ETag ties it to one version of
// the data file: metadata of a replaced or foreign file is ignored.
type sidecar struct {
	Key  string            `json:"key"`
	ETag string            `json:"etag"`
	Meta map[string]string `json:"meta"`
}

func (s *Store) metaPath(key string) string { return s.internal("meta", keyName(key)+".json") }

func (s *Store) readMeta(key, etag string) map[string]string {
	data, err := os.ReadFile(s.metaPath(key))
	if err != nil {
		return nil
	}
	var sc sidecar
	if json.Unmarshal(data, &sc) != nil || sc.ETag != etag || sc.Key != key {
		return nil
	}
	return sc.Meta
}

// writeTemp copies body into a new file under the bookkeeping folder, on
// the same file system as the data so it can be linked or renamed in.
func (s *Store) writeTemp(ctx context.Context, body io.Reader) (string, int64, error) {
	dir := s.internal("tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	f, err := os.CreateTemp(dir, "obj-*")
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(f, ctxReader{ctx, body})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), n, nil
}

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// lockKey takes the cross-process write lock of key.
// The returned unlock may be called more than once.
func (s *Store) lockKey(ctx context.Context, key string) (func(), error) {
	dir := s.internal("locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, keyName(key)+".lock"))
	if err != nil {
		return nil, err
	}
	return sync.OnceFunc(unlock), nil
}

// maxLockWait bounds the wait for another process's write of one key.
const maxLockWait = 10 * time.Second

func (s *Store) object(key string, fi fs.FileInfo) store.Object {
	return store.Object{Key: key, Size: fi.Size(), ETag: etagOf(fi), Modified: fi.ModTime().UTC()}
}

// Create writes a new object; store.ErrExists if the key is taken.
func (s *Store) Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (store.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return store.Object{}, err
	}
	if err := store.CheckMeta(meta); err != nil {
		return store.Object{}, fmt.Errorf("create %s: %w", key, err)
	}
	// Fail fast before copying a large body.
	if _, err := os.Lstat(p); err == nil {
		return store.Object{}, fmt.Errorf("create %s: %w", key, store.ErrExists)
	}
	tmp, n, err := s.writeTemp(ctx, body)
	if err != nil {
		return store.Object{}, fmt.Errorf("create %s: %w", key, err)
	}
	defer os.Remove(tmp)
	if size >= 0 && n != size {
		return store.Object{}, fmt.Errorf("create %s: read %d bytes, expected %d", key, n, size)
	}
	unlock, err := s.lockKey(ctx, key)
	if err != nil {
		return store.Object{}, fmt.Errorf("create %s: lock: %w", key, err)
	}
	defer unlock()
	if _, err := os.Lstat(p); err == nil {
		return store.Object{}, fmt.Errorf("create %s: %w", key, store.ErrExists)
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return store.Object{}, fmt.Errorf("create %s: %w", key, err)
	}
	obj := s.object(key, fi)
	// link(2) keeps inode and mtime, so the ETag computed on the temporary
	// file is the ETag of the object.
	if len(meta) > 0 {
		if err := s.writeSidecar(sidecar{Key: key, ETag: obj.ETag, Meta: meta}); err != nil {
			return store.Object{}, fmt.Errorf("create %s: write metadata: %w", key, err)
		}
		obj.Meta = meta
	} else {
		os.Remove(s.metaPath(key))
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return store.Object{}, fmt.Errorf("create %s: %w", key, conflictErr(err))
	}
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return store.Object{}, fmt.Errorf("create %s: %w", key, store.ErrExists)
		}
		return store.Object{}, fmt.Errorf("create %s: %w", key, conflictErr(err))
	}
	// The link is done: the fsync need not hold other writers up (a
	// process stopped inside the lock blocks them).
	unlock()
	syncDir(filepath.Dir(p))
	return obj, nil
}

// conflictErr explains the one layout a directory cannot hold but S3 can:
// an object "a" and an object "a/b".
func conflictErr(err error) error {
	if errors.Is(err, fs.ErrExist) || errors.Is(err, errNotDir) {
		return fmt.Errorf("a key is both an object and a folder: %w", err)
	}
	return err
}

func (s *Store) writeSidecar(sc sidecar) error {
	data, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	dir := s.internal("meta")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.metaPath(sc.Key))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Replace overwrites key if its ETag is still etag. The new version has no
// user metadata, as with an S3 PutObject.
func (s *Store) Replace(ctx context.Context, key string, body []byte, etag string) (store.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return store.Object{}, err
	}
	if etag == "" {
		return store.Object{}, fmt.Errorf("replace %s: an etag is required (use Create for new objects)", key)
	}
	tmp, _, err := s.writeTemp(ctx, bytes.NewReader(body))
	if err != nil {
		return store.Object{}, fmt.Errorf("replace %s: %w", key, err)
	}
	defer os.Remove(tmp)
	unlock, err := s.lockKey(ctx, key)
	if err != nil {
		return store.Object{}, fmt.Errorf("replace %s: lock: %w", key, err)
	}
	defer unlock()
	cur, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return store.Object{}, fmt.Errorf("replace %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.Object{}, fmt.Errorf("replace %s: %w", key, err)
	}
	if etagOf(cur) != etag {
		return store.Object{}, fmt.Errorf("replace %s: %w", key, store.ErrPrecondition)
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return store.Object{}, fmt.Errorf("replace %s: %w", key, err)
	}
	os.Remove(s.metaPath(key))
	if err := os.Rename(tmp, p); err != nil {
		return store.Object{}, fmt.Errorf("replace %s: %w", key, err)
	}
	unlock() // as in Create
	syncDir(filepath.Dir(p))
	return s.object(key, fi), nil
}

// Get opens an object.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, store.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, store.Object{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, store.Object{}, fmt.Errorf("get %s: %w", key, notFound(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = store.ErrNotFound
	}
	if err != nil {
		f.Close()
		return nil, store.Object{}, fmt.Errorf("get %s: %w", key, err)
	}
	obj := s.object(key, fi)
	obj.Meta = s.readMeta(key, obj.ETag)
	return f, obj, nil
}

// Stat describes an object.
func (s *Store) Stat(ctx context.Context, key string) (store.Object, error) {
	p, err := s.path(key)
	if err != nil {
		return store.Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Object{}, err
	}
	fi, err := os.Stat(p)
	if err == nil && !fi.Mode().IsRegular() {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Object{}, fmt.Errorf("stat %s: %w", key, notFound(err))
	}
	obj := s.object(key, fi)
	obj.Meta = s.readMeta(key, obj.ETag)
	return obj, nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
		return store.ErrNotFound
	}
	return err
}

// List calls fn for each object under prefix in ascending key order (byte
// order, as S3 lists).
func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions, fn func(store.Object) error) error {
	if strings.Contains(prefix, "\\") || strings.Contains("/"+prefix, "/../") || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("list %q: invalid prefix", prefix)
	}
	// Walk only the folder the prefix is in.
	base := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = prefix[:i]
	}
	start := s.root
	if base != "" {
		start = filepath.Join(s.root, filepath.FromSlash(base))
	}
	var objs []store.Object
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if p == start {
				return nil
			}
			if key == Internal {
				return fs.SkipDir
			}
			// Descend only where keys can still start with prefix.
			dk := key + "/"
			if !strings.HasPrefix(dk, prefix) && !strings.HasPrefix(prefix, dk) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) || key <= opts.StartAfter {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		objs = append(objs, s.object(key, fi))
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for i, o := range objs {
		if opts.Limit > 0 && i >= opts.Limit {
			break
		}
		if err := fn(o); err != nil {
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Delete removes key; with an etag, only that version.
func (s *Store) Delete(ctx context.Context, key string, etag string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := s.lockKey(ctx, key)
	if err != nil {
		return fmt.Errorf("delete %s: lock: %w", key, err)
	}
	defer unlock()
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(notFound(err), store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if etag != "" && etagOf(fi) != etag {
		return fmt.Errorf("delete %s: %w", key, store.ErrPrecondition)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	os.Remove(s.metaPath(key))
	return nil
}

// syncDir makes a rename or link durable; best effort (not all platforms
// can fsync a folder).
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}
