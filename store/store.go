// Package store holds releases, their metadata, the history and the lock of
// an application. Backends (store/s3, store/dir) implement the small Store
// interface of blob operations; everything else here is built on it, so it
// behaves the same on every backend.
package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"
)

var (
	// ErrNotFound: no object at that key.
	ErrNotFound = errors.New("not found")
	// ErrExists: Create found an object already at that key.
	ErrExists = errors.New("already exists")
	// ErrPrecondition: Replace or Delete found another version than the
	// ETag it was given (someone else wrote in between).
	ErrPrecondition = errors.New("changed by someone else")
)

// Object describes one stored blob.
type Object struct {
	Key      string
	Size     int64
	ETag     string // opaque version token, used for compare-and-swap
	Modified time.Time
	// Meta is user metadata (lower-case keys). Only Stat and Get fill it;
	// List leaves it nil.
	Meta map[string]string
}

// ListOptions narrows a listing.
type ListOptions struct {
	// StartAfter skips keys up to and including this one.
	StartAfter string
	// Limit stops after this many objects (0: no limit). Backends use it
	// as the page size hint so a short listing is one request.
	Limit int
}

// Store is a flat key/value blob store with conditional writes.
// Keys use "/" as separator. Implementations must be safe for concurrent use
// by many processes: Create and Replace are atomic compare-and-swap.
type Store interface {
	// Create writes a new object; ErrExists if the key is taken.
	Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (Object, error)
	// Replace overwrites key only if its current ETag equals etag;
	// ErrPrecondition otherwise, ErrNotFound if it is gone.
	Replace(ctx context.Context, key string, body []byte, etag string) (Object, error)
	// Get opens an object. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, Object, error)
	// Stat describes an object without reading it.
	Stat(ctx context.Context, key string) (Object, error)
	// List calls fn for each object whose key starts with prefix, in
	// ascending key order. Returning ErrStop from fn ends the listing
	// without error.
	List(ctx context.Context, prefix string, opts ListOptions, fn func(Object) error) error
	// Delete removes key. With a non-empty etag it only deletes that
	// version (ErrPrecondition otherwise). Deleting a missing key is not an error.
	Delete(ctx context.Context, key string, etag string) error
	// String names the store for messages, e.g. "s3://bucket/prefix".
	String() string
}

// ErrStop ends a List early.
var ErrStop = errors.New("stop listing")

var (
	// ErrImmutable: a release exists for the commit with different bytes.
	ErrImmutable = errors.New("release is immutable")
	// ErrLocked: another operator holds the application's lock.
	ErrLocked = errors.New("locked")
)

// maxPrealloc bounds what ReadAll allocates up front on a size it was told
// (a length header from the network can say anything).
const maxPrealloc = 256 << 20

// ReadAll is io.ReadAll for a body whose size is known (a Content-Length,
// an object's size): one allocation of the right size instead of a
// doubling buffer, whose growth and clearing were a tenth of oops list's
// CPU at 10,000 releases. A wrong size costs only speed.
func ReadAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > maxPrealloc {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}
