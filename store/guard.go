package store

import (
	"context"
	"io"
	"time"
)

// Guarded returns s with check asked before every write (Create, Replace,
// Delete). oops wraps its store so that a command that lost its lock
// writes nothing more under it: check looks at the lease the context
// carries (target.CheckFence). Reads pass straight through.
//
// A store that keeps leftovers of interrupted writes (LeftoverCleaner)
// stays one, so fsck still finds them; removing one is a write, checked
// too.
func Guarded(s Store, check func(ctx context.Context) error) Store {
	g := guarded{s, check}
	if lc, ok := s.(LeftoverCleaner); ok {
		return guardedCleaner{g, lc}
	}
	return g
}

type guardedCleaner struct {
	guarded
	lc LeftoverCleaner
}

func (g guardedCleaner) Leftovers(ctx context.Context, olderThan time.Time) ([]Leftover, error) {
	return g.lc.Leftovers(ctx, olderThan)
}

func (g guardedCleaner) RemoveLeftover(ctx context.Context, l Leftover) error {
	if err := g.check(ctx); err != nil {
		return err
	}
	return g.lc.RemoveLeftover(ctx, l)
}

type guarded struct {
	Store
	check func(ctx context.Context) error
}

func (g guarded) Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (Object, error) {
	if err := g.check(ctx); err != nil {
		return Object{}, err
	}
	return g.Store.Create(ctx, key, body, size, meta)
}

func (g guarded) Replace(ctx context.Context, key string, body []byte, etag string) (Object, error) {
	if err := g.check(ctx); err != nil {
		return Object{}, err
	}
	return g.Store.Replace(ctx, key, body, etag)
}

func (g guarded) Delete(ctx context.Context, key, etag string) error {
	if err := g.check(ctx); err != nil {
		return err
	}
	return g.Store.Delete(ctx, key, etag)
}

// ListsInRanges passes the wrapped store's answer on (RangeLister).
func (g guarded) ListsInRanges() bool { return listsInRanges(g.Store) }
