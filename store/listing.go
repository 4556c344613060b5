package store

// Listing releases: see the layout and the wave of requests in index.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oops-deploy/oops/release"
)

// RangeLister is implemented by stores whose listing costs a round trip
// per page of keys (S3: 1000 keys a page, each page asking for the next):
// List then lists the 16 ranges of a commit's first hex digit
// concurrently. A store without it (a directory: one walk, no round
// trips) lists each key family in one call, since 16 walks of the same
// folder would cost 16 times the work for nothing.
type RangeLister interface {
	// ListsInRanges reports whether concurrent listings of sub-prefixes
	// are faster than one listing.
	ListsInRanges() bool
}

// listsInRanges reports whether s lists faster in concurrent ranges.
func listsInRanges(s Store) bool {
	rl, ok := s.(RangeLister)
	return ok && rl.ListsInRanges()
}

const (
	// compactAfter: a full List that had to read more metadata objects
	// than this (published since the snapshot) writes a new snapshot, so
	// the reads a listing needs stay about this many, in one round trip.
	compactAfter = 32
	// metaReads bounds concurrent metadata reads: compactAfter of them go
	// in one wave.
	metaReads = compactAfter
	// clockSlack is how far a publisher's clock (the published time) may
	// run ahead of the store's (the artifact's time in the listing, which
	// S3 rounds to the second): List --limit trusts the artifact's time,
	// plus this, as the newest a release not yet decoded can be. Further
	// off, the first release decoded says so and List decodes them all.
	clockSlack = 10 * time.Second
)

// indexFile is the snapshot (index.json). Versions of oops before the
// snapshot read and write Version and Releases only, and ignore the rest.
type indexFile struct {
	Version  int                        `json:"version"`
	Releases map[string]release.Release `json:"releases"`
	// MetaETags are the ETags of the metadata objects the entries were
	// read from (absent in snapshots older oops wrote).
	MetaETags map[string]string `json:"meta_etags,omitempty"`
}

// rawSnapshot is the snapshot with its entries left undecoded, for a
// listing with a limit, which decodes only what it shows.
type rawSnapshot struct {
	Version   int                        `json:"version"`
	Releases  map[string]json.RawMessage `json:"releases"`
	MetaETags map[string]string          `json:"meta_etags,omitempty"`
}

// snapshot is the snapshot as a listing read it: entries decoded (a full
// listing shows them all, and decoding them in one pass costs half as
// much as one by one) or raw.
type snapshot struct {
	decoded   map[string]release.Release
	raw       map[string]json.RawMessage
	metaETags map[string]string
}

// loadSnapshot reads index.json: an empty snapshot and etag "" when there
// is none.
func (x *Index) loadSnapshot(ctx context.Context, raw bool) (*snapshot, string, error) {
	rc, obj, err := x.s.Get(ctx, IndexKey(x.app))
	if errors.Is(err, ErrNotFound) {
		return &snapshot{}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the release index: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", fmt.Errorf("read the release index: %w", err)
	}
	if raw {
		var f rawSnapshot
		if err = json.Unmarshal(data, &f); err == nil {
			return &snapshot{raw: f.Releases, metaETags: f.MetaETags}, obj.ETag, nil
		}
	} else {
		var f indexFile
		if err = json.Unmarshal(data, &f); err == nil {
			return &snapshot{decoded: f.Releases, metaETags: f.MetaETags}, obj.ETag, nil
		}
	}
	return nil, obj.ETag, fmt.Errorf("read the release index in %s: %w", x.s, &CorruptError{Key: IndexKey(x.app), Err: err})
}

// Listing is what one listing read: the releases and, when asked for, the
// marks, read in the same wave of requests.
type Listing struct {
	Releases []release.Release
	// Marks and MarksErr are LoadMarks' answer (ListWithMarks only).
	Marks    Marks
	MarksErr error
}

// List returns releases newest first (at most limit; 0 for all).
func (x *Index) List(ctx context.Context, limit int) ([]release.Release, error) {
	l, err := x.list(ctx, limit, false, compactAfter)
	if err != nil {
		return nil, err
	}
	return l.Releases, nil
}

// ListWithMarks is List that also reads the marks, in the same wave of
// requests as the listing: what `oops list` shows.
func (x *Index) ListWithMarks(ctx context.Context, limit int) (*Listing, error) {
	return x.list(ctx, limit, true, compactAfter)
}

// Compact writes a snapshot that holds every release's metadata, when one
// is missing from it, so that the next listings read none of them one by
// one. List does it on its own once compactAfter are missing; oops fsck
// --repair and tests call it. A snapshot that cannot be decoded is left
// to oops fsck --repair, which rebuilds it.
func (x *Index) Compact(ctx context.Context) error {
	_, err := x.list(ctx, 0, false, 0)
	return err
}

// listRanges lists prefix: in 16 concurrent ranges of the next hex digit
// when the store lists faster so, else in one call. fn is called from one
// goroutine per range; each range's objects come in key order.
func (x *Index) listRanges(ctx context.Context, prefix string, fn func(r int, o Object)) error {
	if !listsInRanges(x.s) {
		return x.s.List(ctx, prefix, ListOptions{}, func(o Object) error { fn(0, o); return nil })
	}
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for r := range 16 {
		wg.Go(func() {
			errs[r] = x.s.List(ctx, prefix+"0123456789abcdef"[r:r+1], ListOptions{}, func(o Object) error { fn(r, o); return nil })
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// candidate is one listed commit on its way to a release.
type candidate struct {
	sha  string
	objs []Object // its artifacts, in key order
	// meta is its metadata object in the listing (zero Key: none).
	meta Object
	// entry or raw is its snapshot entry when the snapshot may be trusted
	// for it.
	entry *release.Release
	raw   json.RawMessage
	// rel is its release once known (decoded, read or bare).
	rel   release.Release
	known bool
	// fetched: rel was read from its metadata object, not the snapshot.
	fetched bool
}

// bound is the newest its release can have been published: the time of
// its newest artifact, since publish takes its time before it uploads.
func (c *candidate) bound() time.Time {
	var t time.Time
	for _, o := range c.objs {
		if o.Modified.After(t) {
			t = o.Modified
		}
	}
	return t.Add(clockSlack)
}

// list lists; when it read more than compactMin metadata objects it
// writes a new snapshot.
func (x *Index) list(ctx context.Context, limit int, withMarks bool, compactMin int) (*Listing, error) {
	// The wave: artifacts, metadata keys, snapshot and marks at once.
	var (
		wg              sync.WaitGroup
		artErr, metaErr error
		snap            *snapshot
		snapETag        string
		snapErr         error
		out             = &Listing{}
		// One slice per range: each range's listing appends to its own.
		arts, metas [16][]Object
		relPrefix   = releasesPrefix(x.app)
	)
	wg.Go(func() {
		artErr = x.listRanges(ctx, release.Prefix(x.app), func(r int, o Object) { arts[r] = append(arts[r], o) })
	})
	wg.Go(func() {
		metaErr = x.listRanges(ctx, relPrefix, func(r int, o Object) { metas[r] = append(metas[r], o) })
	})
	wg.Go(func() { snap, snapETag, snapErr = x.loadSnapshot(ctx, limit > 0) })
	if withMarks {
		wg.Go(func() { out.Marks, out.MarksErr = LoadMarks(ctx, x.s, x.app) })
	}
	wg.Wait()
	if err := errors.Join(artErr, metaErr); err != nil {
		return nil, fmt.Errorf("list releases in %s: %w", x.s, err)
	}
	snapCorrupt := false
	if snapErr != nil {
		if !x.readAround(snapErr, "reading each release's own metadata") {
			return nil, snapErr
		}
		snap, snapCorrupt = &snapshot{}, true
	}

	// Commits in key order, each with its artifacts (other tools may have
	// uploaded more than one format of a commit).
	var cands []*candidate
	bySHA := map[string]*candidate{}
	for r := range arts {
		for _, o := range arts[r] {
			sha, _, ok := release.ParseKey(x.app, o.Key)
			if !ok {
				continue
			}
			c := bySHA[sha]
			if c == nil {
				c = &candidate{sha: sha}
				bySHA[sha] = c
				cands = append(cands, c)
			}
			c.objs = append(c.objs, o)
		}
	}
	for r := range metas {
		for _, o := range metas[r] {
			sha, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, relPrefix), ".json")
			if c := bySHA[sha]; ok && c != nil {
				c.meta = o
			}
		}
	}
	for _, c := range cands {
		entry, hasEntry := snap.decoded[c.sha]
		raw, hasRaw := snap.raw[c.sha]
		if !hasEntry && !hasRaw {
			if c.meta.Key == "" {
				c.rel, c.known = x.bare(c), true
			}
			continue
		}
		// An entry is trusted unless its metadata object was rewritten
		// since (the snapshot recorded another ETag): then it is read.
		if e := snap.metaETags[c.sha]; e == "" || c.meta.Key == "" || e == c.meta.ETag {
			if hasEntry {
				c.entry = &entry
			}
			c.raw = raw
		}
	}

	if err := x.resolve(ctx, cands, limit); err != nil {
		return nil, err
	}
	rels := make([]release.Release, 0, len(cands))
	fetched := 0
	for _, c := range cands {
		if c.fetched {
			fetched++
		}
		if c.known {
			rels = append(rels, c.rel)
		}
	}
	if fetched > compactMin && !snapCorrupt {
		if err := x.compact(ctx, snap, snapETag, cands); err != nil && compactMin == 0 {
			return nil, err
		}
	}
	x.sortNewestFirst(rels)
	if limit > 0 && len(rels) > limit {
		rels = rels[:limit]
	}
	out.Releases = rels
	return out, nil
}

// resolve makes known the releases List shows: all of them without a
// limit; with one, only as many as it takes to be sure of the newest
// limit, taking each one's artifact time as the newest it can have been
// published until it is decoded.
func (x *Index) resolve(ctx context.Context, cands []*candidate, limit int) error {
	var pending []*candidate
	for _, c := range cands {
		if !c.known {
			pending = append(pending, c)
		}
	}
	if limit <= 0 || limit >= len(cands) {
		return x.decode(ctx, pending)
	}
	// Newest possible first.
	sort.SliceStable(pending, func(i, j int) bool { return pending[i].bound().After(pending[j].bound()) })
	for len(pending) > 0 {
		var exact []release.Release
		for _, c := range cands {
			if c.known {
				exact = append(exact, c.rel)
			}
		}
		// The limit-th newest known so far: a pending release that may
		// be newer (or as new: ties are ordered by what is decoded) must
		// be decoded.
		var kth time.Time
		if len(exact) >= limit {
			x.sortNewestFirst(exact)
			kth = exact[limit-1].Published
		}
		n := 0
		for n < len(pending) && !pending[n].bound().Before(kth) {
			n++
		}
		if n == 0 {
			return nil
		}
		if len(exact) < limit {
			// Not limit known yet: the newest possible few, as many as
			// the known releases newer than any pending one leave.
			sure := 0
			for _, r := range exact {
				if r.Published.After(pending[0].bound()) {
					sure++
				}
			}
			n = max(1, min(n, limit-sure))
		}
		// Else every one that may be newer than the limit-th, at once.
		batch := pending[:n]
		if err := x.decode(ctx, batch); err != nil {
			return err
		}
		for _, c := range batch {
			if c.rel.Published.After(c.bound()) {
				// Published after its artifact was stored: a clock far
				// off, or a time given to publish. Times in the listing
				// are no guide then: decode everything.
				return x.decode(ctx, pending[len(batch):])
			}
		}
		pending = pending[len(batch):]
	}
	return nil
}

// decode makes cands known: from their snapshot entries, else (all
// together, concurrently) from their metadata objects.
func (x *Index) decode(ctx context.Context, cands []*candidate) error {
	var reads []*candidate
	for _, c := range cands {
		if c.entry != nil {
			c.rel, c.known = x.describe(c.sha, c.objs, map[string]release.Release{c.sha: *c.entry}), true
			continue
		}
		if c.raw != nil {
			var r release.Release
			if err := json.Unmarshal(c.raw, &r); err == nil {
				c.rel, c.known = x.describe(c.sha, c.objs, map[string]release.Release{c.sha: r}), true
				continue
			}
			c.raw = nil // an entry that cannot be decoded: read the object
		}
		if c.meta.Key == "" {
			c.rel, c.known = x.bare(c), true
			continue
		}
		reads = append(reads, c)
	}
	errs := make([]error, len(reads))
	rels := make([]release.Release, len(reads))
	sem := make(chan struct{}, metaReads)
	var wg sync.WaitGroup
	for i, c := range reads {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rels[i], c.meta.ETag, errs[i] = x.readReleaseMeta(ctx, c.sha)
		})
	}
	wg.Wait()
	for i, c := range reads {
		switch err := errs[i]; {
		case err == nil:
			c.rel, c.known, c.fetched = x.describe(c.sha, c.objs, map[string]release.Release{c.sha: rels[i]}), true, true
		case errors.Is(err, ErrNotFound), x.readAround(err, "listing it from its artifact"):
			c.rel, c.known = x.bare(c), true
		default:
			return fmt.Errorf("list releases in %s: %w", x.s, err)
		}
	}
	return nil
}

// bare is the release of a commit listed from its first artifact alone.
func (x *Index) bare(c *candidate) release.Release {
	return x.describe(c.sha, c.objs, nil)
}

// compact writes a new snapshot: the old one's entries and the metadata
// just read, with a conditional write. List ignores its error (best
// effort): a conflicting writer (another lister, an older oops's publish)
// or a user without write access leaves the old snapshot, and the next
// listing reads what it lacks again.
func (x *Index) compact(ctx context.Context, old *snapshot, etag string, cands []*candidate) error {
	f := struct {
		Version   int                        `json:"version"`
		Releases  map[string]json.RawMessage `json:"releases"`
		MetaETags map[string]string          `json:"meta_etags,omitempty"`
	}{Version: 1, Releases: make(map[string]json.RawMessage, len(old.raw)+len(old.decoded)+len(cands)), MetaETags: map[string]string{}}
	for sha, raw := range old.raw {
		f.Releases[sha] = raw
	}
	for sha, r := range old.decoded {
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		f.Releases[sha] = raw
	}
	for sha, e := range old.metaETags {
		f.MetaETags[sha] = e
	}
	for _, c := range cands {
		if !c.fetched || c.rel.Bare {
			continue
		}
		stored := c.rel
		stored.ETag, stored.Bare = "", false
		raw, err := json.Marshal(stored)
		if err != nil {
			return err
		}
		f.Releases[c.sha] = raw
		f.MetaETags[c.sha] = c.meta.ETag
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if etag == "" {
		_, err = x.s.Create(ctx, IndexKey(x.app), bytes.NewReader(data), int64(len(data)), nil)
	} else {
		_, err = x.s.Replace(ctx, IndexKey(x.app), data, etag)
	}
	if err != nil {
		return fmt.Errorf("write the release index snapshot: %w", err)
	}
	return nil
}
