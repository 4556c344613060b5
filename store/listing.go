package store

// Listing releases: see the layout and the wave of requests in index.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	segjson "github.com/segmentio/encoding/json"

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

// snapshotFormat is the "format" of the snapshots this oops writes. Format
// 2 records, per entry, the ETag of the artifact it describes, and the
// commits found bare: a listing then trusts what the artifact listing
// confirms and reads no metadata keys at all. Without it (snapshots of
// older oops, or none) a listing also lists the metadata keys, as those
// versions did, and then writes a format 2 snapshot.
const snapshotFormat = 2

// snapshotFile is the snapshot (index.json), its entries of type E:
// decoded (indexFile) or left raw (rawSnapshot, for a listing with a
// limit, which decodes only what it shows, and for compaction, which
// writes entries as it read them). Versions of oops before the snapshot
// read and write Version and Releases only, and ignore the rest; one that
// rewrites it drops the rest, which puts the next listing back on the
// metadata keys.
type snapshotFile[E any] struct {
	Version  int          `json:"version"`
	Releases map[string]E `json:"releases"`
	// MetaETags are the ETags of the metadata objects the entries were
	// read from (snapshots of the version before format 2).
	MetaETags map[string]string `json:"meta_etags,omitempty"`
	snapshotRefs
}

type (
	indexFile   = snapshotFile[release.Release]
	rawSnapshot = snapshotFile[json.RawMessage]
)

// snapshotRefs are format 2's fields: what the artifact listing must show
// for an entry or a bare commit to be taken from the snapshot.
type snapshotRefs struct {
	Format int `json:"format,omitempty"`
	// ArtifactETags: commit -> the artifact its entry describes, as
	// listed (bareRef: ETag and time; the first writers of format 2
	// recorded the ETag alone, still trusted). An artifact uploaded again
	// has another time, and another ETag when of other bytes: its
	// metadata (written again by that publish, or deleted and written
	// anew with the same bytes) is read again.
	ArtifactETags map[string]string `json:"artifact_etags,omitempty"`
	// Bare: commit -> its first artifact (bareRef) when it had no
	// metadata: a bare zip of other CI costs one read, not one a listing.
	Bare map[string]string `json:"bare,omitempty"`
	// Adopted: commit -> ETag of its adoption marker (AdoptedKey) when
	// the entry was read after it: publishing a bare artifact's own bytes
	// writes metadata without changing the artifact, and leaves a marker
	// so that listings see it.
	Adopted map[string]string `json:"adopted,omitempty"`
}

// bareRef identifies an artifact as listed: ETag and time, so that one
// deleted and uploaded again with the same bytes (the same ETag) by
// oops publish, metadata and all, is not taken for the bare one.
func bareRef(o Object) string {
	return o.ETag + "@" + strconv.FormatInt(o.Modified.UnixNano(), 10)
}

// snapshot is the snapshot as a listing read it: entries decoded (a full
// listing shows them all, and decoding them in one pass costs half as
// much as one by one) or raw.
type snapshot struct {
	decoded   map[string]release.Release
	raw       map[string]json.RawMessage
	metaETags map[string]string
	refs      snapshotRefs
}

// current reports whether the snapshot is of format 2: a listing then
// needs no metadata keys.
func (s *snapshot) current() bool { return s.refs.current() }

func (r snapshotRefs) current() bool { return r.Format >= snapshotFormat }

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
	data, err := ReadAll(rc, obj.Size)
	if err != nil {
		return nil, "", fmt.Errorf("read the release index: %w", err)
	}
	snap, err := decodeSnapshot(data, raw)
	if err != nil {
		return nil, obj.ETag, fmt.Errorf("read the release index in %s: %w", x.s, &CorruptError{Key: IndexKey(x.app), Err: err})
	}
	return snap, obj.ETag, nil
}

// decodeSnapshot decodes index.json. It uses segmentio/encoding/json, a
// drop-in for encoding/json that decodes this object three times faster
// (15 ms against 50 ms at 10,000 releases, the largest part of oops list's
// CPU); FuzzDecodeSnapshot holds it to encoding/json's answers.
func decodeSnapshot(data []byte, raw bool) (*snapshot, error) {
	if raw {
		var f rawSnapshot
		if err := segjson.Unmarshal(data, &f); err != nil {
			return nil, err
		}
		return &snapshot{raw: f.Releases, metaETags: f.MetaETags, refs: f.snapshotRefs}, nil
	}
	var f indexFile
	if err := segjson.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	return &snapshot{decoded: f.Releases, metaETags: f.MetaETags, refs: f.snapshotRefs}, nil
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

// markerPage is one LIST page of S3.
const markerPage = 1000

// listMarkers lists the adoption markers: usually few, so in one request;
// when the first page is full (a store whose releases are mostly adopted
// zips of other CI), the rest in the ranges after its last key,
// concurrently: at most two round trips up to 16,000 markers. fn is called
// from one goroutine at a time.
func (x *Index) listMarkers(ctx context.Context, prefix string, fn func(Object)) error {
	if !listsInRanges(x.s) {
		return x.s.List(ctx, prefix, ListOptions{}, func(o Object) error { fn(o); return nil })
	}
	n, last := 0, ""
	err := x.s.List(ctx, prefix, ListOptions{Limit: markerPage}, func(o Object) error {
		fn(o)
		n, last = n+1, o.Key
		return nil
	})
	if err != nil || n < markerPage {
		return err
	}
	var mu sync.Mutex
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for r := range 16 {
		sub := prefix + "0123456789abcdef"[r:r+1]
		var opts ListOptions
		switch {
		case strings.HasPrefix(last, sub):
			opts.StartAfter = last
		case sub < last:
			continue // listed in the first page
		}
		wg.Go(func() {
			errs[r] = x.s.List(ctx, sub, opts, func(o Object) error {
				mu.Lock()
				defer mu.Unlock()
				fn(o)
				return nil
			})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// candidate is one listed commit on its way to a release.
type candidate struct {
	sha  string
	objs []Object // its artifacts, in key order
	// meta is its metadata object in the listing (zero Key: none, or
	// metadata keys were not listed).
	meta Object
	// probe: read its metadata object although the listing did not show
	// one (metadata keys not listed, and the snapshot does not vouch for
	// it).
	probe bool
	// marker is its adoption marker, when listed.
	marker Object
	// entry or raw is its snapshot entry when the snapshot may be trusted
	// for it.
	entry *release.Release
	raw   json.RawMessage
	// rel is its release once known (decoded, read or bare).
	rel   release.Release
	known bool
	// read: its metadata object was asked for; fetched: and read (rel
	// is from it); missing: and not found (bare for sure).
	read, fetched, missing bool
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

// artifactRef is the bareRef of the artifact at key ("" when key is not
// listed).
func (c *candidate) artifactRef(key string) string {
	for _, o := range c.objs {
		if o.Key == key {
			return bareRef(o)
		}
	}
	return ""
}

// listedRef returns the bareRef of the artifact an entry's ArtifactETags
// value ref names, when it is listed ("" if not): the same ETag and time,
// or, for the ETag alone the first writers of format 2 recorded, the same
// ETag.
func (c *candidate) listedRef(ref string) string {
	for _, o := range c.objs {
		if ref == o.ETag || isRef(ref, o) {
			return bareRef(o)
		}
	}
	return ""
}

// listed reports whether ref (an ArtifactETags value) names one of its
// artifacts as listed: listedRef(ref) != "", without building a string
// for each of a listing's 10,000 entries.
func (c *candidate) listed(ref string) bool {
	for _, o := range c.objs {
		if ref == o.ETag || isRef(ref, o) {
			return true
		}
	}
	return false
}

// isRef reports whether ref == bareRef(o), allocating nothing.
func isRef(ref string, o Object) bool {
	rest, ok := strings.CutPrefix(ref, o.ETag)
	if !ok || rest == "" || rest[0] != '@' {
		return false
	}
	var buf [24]byte
	return rest[1:] == string(strconv.AppendInt(buf[:0], o.Modified.UnixNano(), 10))
}

// list lists; when it read more than compactMin metadata objects, or the
// snapshot is older than format 2, it writes a new snapshot.
func (x *Index) list(ctx context.Context, limit int, withMarks bool, compactMin int) (*Listing, error) {
	// The wave: artifacts, adoption markers, snapshot and marks at once.
	var (
		wg                   sync.WaitGroup
		artErr, markErr      error
		snap                 *snapshot
		snapETag             string
		snapErr              error
		out                  = &Listing{}
		markers              = map[string]Object{}
		arts, metas          [16][]Object // one slice per range: each range's listing appends to its own
		relPrefix, adoptedAt = releasesPrefix(x.app), adoptedPrefix(x.app)
	)
	wg.Go(func() {
		artErr = x.listRanges(ctx, release.Prefix(x.app), func(r int, o Object) { arts[r] = append(arts[r], o) })
	})
	wg.Go(func() {
		markErr = x.listMarkers(ctx, adoptedAt, func(o Object) { markers[strings.TrimPrefix(o.Key, adoptedAt)] = o })
	})
	wg.Go(func() { snap, snapETag, snapErr = x.loadSnapshot(ctx, limit > 0) })
	if withMarks {
		wg.Go(func() { out.Marks, out.MarksErr = LoadMarks(ctx, x.s, x.app) })
	}
	wg.Wait()
	if err := errors.Join(artErr, markErr); err != nil {
		return nil, fmt.Errorf("list releases in %s: %w", x.s, err)
	}
	snapCorrupt := false
	if snapErr != nil {
		if !x.readAround(snapErr, "reading each release's own metadata") {
			return nil, snapErr
		}
		snap, snapCorrupt = &snapshot{}, true
	}
	current := snap.current()
	if !current {
		// A snapshot of older oops, or none: the metadata keys say
		// which releases have metadata (a second round trip, until this
		// listing writes a format 2 snapshot).
		if err := x.listRanges(ctx, relPrefix, func(r int, o Object) { metas[r] = append(metas[r], o) }); err != nil {
			return nil, fmt.Errorf("list releases in %s: %w", x.s, err)
		}
	}

	// Commits in key order, each with its artifacts (other tools may have
	// uploaded more than one format of a commit).
	n := 0
	for r := range arts {
		n += len(arts[r])
	}
	cands := make([]*candidate, 0, n)
	bySHA := make(map[string]*candidate, n)
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
		c.marker = markers[c.sha]
		if current {
			x.trustCurrent(c, snap)
		} else {
			x.trustOlder(c, snap)
		}
	}

	if err := x.resolve(ctx, cands, limit); err != nil {
		return nil, err
	}
	rels := make([]release.Release, 0, len(cands))
	reads := 0
	for _, c := range cands {
		if c.read {
			reads++
		}
		if c.known {
			rels = append(rels, c.rel)
		}
	}
	// A snapshot of older oops is rewritten by the first full listing.
	// A listing with a limit of an older snapshot has not decoded the
	// entries it would carry, nor checked them against their artifacts.
	upgrade := !current && limit <= 0 && len(cands) > 0
	if (reads > compactMin || upgrade) && !snapCorrupt && (current || limit <= 0) {
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

// trustCurrent decides, from a format 2 snapshot, what c needs: its entry
// when the artifact it describes is listed unchanged, bare when the
// artifact found bare is, else a read of its metadata object (published
// since, uploaded again, or adopted since: its marker is newer).
func (x *Index) trustCurrent(c *candidate, snap *snapshot) {
	adopted := c.marker.Key != "" && snap.refs.Adopted[c.sha] != c.marker.ETag
	entry, hasEntry := snap.decoded[c.sha]
	raw, hasRaw := snap.raw[c.sha]
	switch etag := snap.refs.ArtifactETags[c.sha]; {
	case adopted:
	case (hasEntry || hasRaw) && etag != "" && c.listed(etag):
		if hasEntry {
			c.entry = &entry
		}
		c.raw = raw
		return
	case !hasEntry && !hasRaw && isRef(snap.refs.Bare[c.sha], c.objs[0]):
		c.rel, c.known = x.bare(c), true
		return
	}
	c.probe = true
}

// trustOlder decides what c needs from a snapshot older than format 2 (or
// none) and the listed metadata keys, as the versions that wrote it did.
func (x *Index) trustOlder(c *candidate, snap *snapshot) {
	entry, hasEntry := snap.decoded[c.sha]
	raw, hasRaw := snap.raw[c.sha]
	if !hasEntry && !hasRaw {
		if c.meta.Key == "" {
			c.rel, c.known = x.bare(c), true
		}
		return
	}
	// An entry is trusted unless its metadata object was rewritten
	// since (the snapshot recorded another ETag), or, with no ETag to
	// tell, an adoption marker says it may have been (a republish of
	// other bytes of the same size) or its artifact is listed with
	// another size (other bytes published since): then it is read. The
	// upgrade records what is trusted here as describing the artifact
	// listed.
	if e := snap.metaETags[c.sha]; (e == "" && c.marker.Key == "") || c.meta.Key == "" || (e != "" && e == c.meta.ETag) {
		if hasEntry && !c.fits(entry) {
			return
		}
		if hasEntry {
			c.entry = &entry
		}
		c.raw = raw
	}
}

// fits reports whether r may describe c's artifacts: the artifact it
// names is not listed with another size.
func (c *candidate) fits(r release.Release) bool {
	for _, o := range c.objs {
		if o.Key == r.Key {
			return o.Size == r.Size
		}
	}
	return true
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
			if err := json.Unmarshal(c.raw, &r); err == nil && c.fits(r) {
				c.rel, c.known = x.describe(c.sha, c.objs, map[string]release.Release{c.sha: r}), true
				continue
			}
			c.raw, c.probe = nil, true // an entry that cannot be decoded, or of other bytes: read the object
		}
		if c.meta.Key == "" && !c.probe {
			c.rel, c.known = x.bare(c), true
			continue
		}
		reads = append(reads, c)
	}
	errs := make([]error, len(reads))
	rels := make([]release.Release, len(reads))
	parallel(len(reads), metaReads, func(i int) {
		rels[i], reads[i].meta.ETag, errs[i] = x.readReleaseMeta(ctx, reads[i].sha)
	})
	for i, c := range reads {
		c.read = true
		switch err := errs[i]; {
		case err == nil:
			c.rel, c.known, c.fetched = x.describe(c.sha, c.objs, map[string]release.Release{c.sha: rels[i]}), true, true
		case errors.Is(err, ErrNotFound):
			c.rel, c.known, c.missing = x.bare(c), true, true
		case x.readAround(err, "listing it from its artifact"):
			c.rel, c.known = x.bare(c), true
		default:
			return fmt.Errorf("list releases in %s: %w", x.s, err)
		}
	}
	return nil
}

// bareForGood returns the commits of cands that a snapshot may record
// bare: without metadata, and not a publish between its two writes (the
// artifact stored, its metadata not yet), whose metadata could come after
// the snapshot and never be read. An artifact oops publish uploaded
// carries its commit in its own metadata, which a HEAD shows: asked of
// each commit without metadata (found by reading, or known from older
// bookkeeping) stored in the last hour by the store's clock (storeNow;
// the older ones are bare zips of other CI, or publishes that died
// long ago, which publishing again fixes).
func (x *Index) bareForGood(ctx context.Context, cands []*candidate, current bool) map[string]bool {
	sure := map[string]bool{}
	var ask []*candidate
	recent := storeNow(cands).Add(-time.Hour)
	for _, c := range cands {
		switch {
		case !c.missing && (current || !c.known || !c.rel.Bare || c.read || c.meta.Key != ""):
		case c.objs[0].Modified.Before(recent):
			// Also when its metadata was found missing: a publish
			// that died long ago would be read by every listing.
			sure[c.sha] = true
		default:
			ask = append(ask, c)
		}
	}
	oops := make([]bool, len(ask))
	parallel(len(ask), metaReads, func(i int) {
		o, err := x.s.Stat(ctx, ask[i].objs[0].Key)
		oops[i] = err != nil || !uploadedBare(o) // unknown: not sure
	})
	for i, c := range ask {
		if !oops[i] {
			sure[c.sha] = true
		}
	}
	return sure
}

// storeNow is the latest the store's clock can be sure to have passed:
// this machine's clock, unless the store's is behind it, as the newest
// artifact listed shows. An artifact's age is judged by it: a store
// clock hours behind this one must not make a publish under way look
// long dead.
func storeNow(cands []*candidate) time.Time {
	var newest time.Time
	for _, c := range cands {
		for _, o := range c.objs {
			if o.Modified.After(newest) {
				newest = o.Modified
			}
		}
	}
	if now := time.Now(); now.Before(newest) {
		return now
	}
	return newest
}

// uploadedBare reports, from its HEAD, whether an artifact without
// metadata was not uploaded by oops publish, so that no metadata is on
// its way.
func uploadedBare(head Object) bool { return head.Meta[MetaCommit] == "" }

// bare is the release of a commit listed from its first artifact alone.
func (x *Index) bare(c *candidate) release.Release {
	return x.describe(c.sha, c.objs, nil)
}

// compact writes a format 2 snapshot of the listed commits: entries
// trusted or just read, with their artifacts' ETags, commits found bare,
// adoptions seen; what a listing with a limit did not resolve is carried
// from the old snapshot; commits no longer listed are dropped. It is a
// conditional write: List ignores its error (best effort), as a
// conflicting writer (another lister, an older oops's publish) or a user
// without write access leaves the old snapshot, and the next listing
// reads what it lacks again.
func (x *Index) compact(ctx context.Context, old *snapshot, etag string, cands []*candidate) error {
	f := rawSnapshot{Version: 1, Releases: make(map[string]json.RawMessage, len(cands)), snapshotRefs: snapshotRefs{
		Format: snapshotFormat, ArtifactETags: make(map[string]string, len(cands)), Bare: map[string]string{}, Adopted: map[string]string{},
	}}
	current := old.current()
	bare := x.bareForGood(ctx, cands, current)
	entry := func(sha string, r release.Release, artifact string) error {
		r.ETag, r.Bare = "", false
		raw, err := json.Marshal(r)
		f.Releases[sha], f.ArtifactETags[sha] = raw, artifact
		return err
	}
	for _, c := range cands {
		var err error
		switch {
		case c.fetched:
			if !c.rel.Bare { // else its metadata names an artifact not listed: read again next time
				err = entry(c.sha, c.rel, c.artifactRef(c.rel.Key))
			}
		case c.missing:
			if bare[c.sha] {
				f.Bare[c.sha] = bareRef(c.objs[0])
			}
		case c.entry != nil && !current:
			// Checked against its artifact for the first time.
			if art := c.artifactRef(c.entry.Key); art != "" {
				err = entry(c.sha, *c.entry, art)
			}
		case c.entry != nil && c.raw == nil:
			err = entry(c.sha, *c.entry, c.listedRef(old.refs.ArtifactETags[c.sha]))
		case c.raw != nil:
			f.Releases[c.sha], f.ArtifactETags[c.sha] = c.raw, c.listedRef(old.refs.ArtifactETags[c.sha])
		case c.known && c.rel.Bare && !c.read && current:
			f.Bare[c.sha] = bareRef(c.objs[0]) // as the snapshot had it
		case c.known && c.rel.Bare && !c.read && c.meta.Key == "":
			if bare[c.sha] {
				f.Bare[c.sha] = bareRef(c.objs[0])
			}
		case current:
			// Not resolved by a listing with a limit: as it was.
			if raw, ok := old.raw[c.sha]; ok {
				f.Releases[c.sha], f.ArtifactETags[c.sha] = raw, old.refs.ArtifactETags[c.sha]
			}
			if b := old.refs.Bare[c.sha]; b != "" {
				f.Bare[c.sha] = b
			}
		}
		if err != nil {
			return err
		}
		if m := c.marker; m.Key != "" && (c.read || (current && old.refs.Adopted[c.sha] == m.ETag)) {
			f.Adopted[c.sha] = m.ETag
		}
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
