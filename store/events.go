package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/oops-deploy/oops/release"
)

// MetaDir is the folder, under an application's prefix, where oops keeps
// its own bookkeeping (history, lock, release marks). Release keys are
// <app>/<app>-<sha>.<ext>, so nothing here can collide with an artifact.
const MetaDir = ".oops"

// EventsPrefix is the key prefix of an application's events.
func EventsPrefix(app string) string { return app + "/" + MetaDir + "/events/" }

// EventKey names the object holding an event that happened at t. The time
// is inverted (MaxInt64 - unix nanos, zero-padded) so that the ascending
// listing every store gives is newest first, and "the last N events" is a
// single short listing. The random suffix keeps two events of the same
// nanosecond, from two machines, apart.
func EventKey(app string, t time.Time, suffix string) string {
	return fmt.Sprintf("%s%019d-%s.json", EventsPrefix(app), math.MaxInt64-t.UnixNano(), suffix)
}

// eventID is the part of an event key that identifies it.
func eventID(app, key string) string {
	return strings.TrimSuffix(strings.TrimPrefix(key, EventsPrefix(app)), ".json")
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// AppendEvent records ev as a new, immutable object. It never rewrites
// another event: concurrent writers each create their own key, so all of
// them land. It sets ev.ID.
func AppendEvent(ctx context.Context, s Store, ev *release.Event) error {
	if ev.App == "" {
		return fmt.Errorf("append event: no application")
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	for attempt := 0; ; attempt++ {
		key := EventKey(ev.App, ev.Time, randomSuffix())
		ev.ID = eventID(ev.App, key)
		body, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("append event: %w", err)
		}
		_, err = s.Create(ctx, key, bytes.NewReader(body), int64(len(body)), nil)
		if errors.Is(err, ErrExists) && attempt < 3 {
			continue // a random suffix collided: pick another
		}
		if err != nil {
			return fmt.Errorf("append event to %s: %w", s, err)
		}
		return nil
	}
}

// NewEventID names, ahead of writing it, the object an event of app that
// happened at t will be stored as (see PutEvent).
func NewEventID(app string, t time.Time) string {
	return eventID(app, EventKey(app, t, randomSuffix()))
}

// PutEvent writes ev at the key its ID names (from NewEventID), so that
// writing the same event twice stores it once: created is false when it
// was there already. It is how events kept in a local spool while the
// store could not be reached are appended later, safely retried.
func PutEvent(ctx context.Context, s Store, ev *release.Event) (created bool, err error) {
	if ev.App == "" || ev.ID == "" {
		return false, fmt.Errorf("put event: no application or id")
	}
	key := EventsPrefix(ev.App) + ev.ID + ".json"
	if err := CheckKey(key); err != nil {
		return false, fmt.Errorf("put event: %w", err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("put event: %w", err)
	}
	_, err = s.Create(ctx, key, bytes.NewReader(body), int64(len(body)), nil)
	if errors.Is(err, ErrExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("put event in %s: %w", s, err)
	}
	return true, nil
}

// EventQuery narrows ListEvents.
type EventQuery struct {
	// Limit is the most events returned (0: all of them).
	Limit int
	// Before returns only events older than the one with this ID, to page
	// through history.
	Before string
	// Concurrency bounds the parallel reads (0: a sensible default).
	Concurrency int
	// OnCorrupt, when set, is told about each event that exists but cannot
	// be decoded, which is then left out; without it such an event fails
	// the whole listing.
	OnCorrupt func(*CorruptError)
}

// defaultEventReads bounds concurrent event reads: enough to hide S3's
// latency for a page of history, few enough not to trip its rate limits.
const defaultEventReads = 16

// ListEvents returns an application's events, newest first. It costs one
// listing request per 1,000 events wanted plus one read per event, the
// reads done concurrently; it never touches events beyond Limit.
func ListEvents(ctx context.Context, s Store, app string, q EventQuery) ([]release.Event, error) {
	prefix := EventsPrefix(app)
	var keys []string
	opts := ListOptions{Limit: q.Limit}
	if q.Before != "" {
		opts.StartAfter = prefix + q.Before + ".json"
	}
	err := s.List(ctx, prefix, opts, func(o Object) error {
		if !strings.HasSuffix(o.Key, ".json") {
			return nil
		}
		keys = append(keys, o.Key)
		if q.Limit > 0 && len(keys) >= q.Limit {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list events in %s: %w", s, err)
	}
	events := make([]release.Event, len(keys))
	corrupt := make([]*CorruptError, len(keys))
	workers := q.Concurrency
	if workers <= 0 {
		workers = defaultEventReads
	}
	workers = min(workers, len(keys))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				ev, err := readEvent(ctx, s, app, keys[i])
				var ce *CorruptError
				if q.OnCorrupt != nil && errors.As(err, &ce) {
					corrupt[i] = ce
					continue
				}
				if err != nil {
					cancel(err) // the first failure wins; the others stop
					return
				}
				events[i] = ev
			}
		})
	}
feed:
	for i := range keys {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	kept := events[:0]
	for i, ev := range events {
		if corrupt[i] != nil {
			q.OnCorrupt(corrupt[i])
			continue
		}
		kept = append(kept, ev)
	}
	return kept, nil
}

func readEvent(ctx context.Context, s Store, app, key string) (release.Event, error) {
	var ev release.Event
	rc, _, err := s.Get(ctx, key)
	if err != nil {
		return ev, fmt.Errorf("read event %s: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return ev, fmt.Errorf("read event %s: %w", key, err)
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("read event: %w", &CorruptError{Key: key, Err: fmt.Errorf("not an oops event: %w", err)})
	}
	if ev.ID == "" {
		ev.ID = eventID(app, key)
	}
	return ev, nil
}
