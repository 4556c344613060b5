package store

// oops fsck: check an application's objects against each other, like git
// fsck, and repair what can be derived from immutable objects.
//
// What is checked (one listing of <app>/, then reads):
//
//	index      (the snapshot, when there is one) decodable; every entry has
//	           its metadata and its artifact and agrees with the metadata
//	           it was made from; metadata published since is not in it,
//	           and that is no problem (list reads it and compacts)
//	metadata   decodable; its artifact exists with the recorded size
//	           (--deep: and its bytes hash to the recorded SHA-256)
//	marks      decodable; every mark names a release that exists
//	events     each one decodable
//	lock       decodable; not stale
//	hooks      each hook marker decodable
//	leftovers  of interrupted uploads and unpacks (backends and targets
//	           that implement LeftoverCleaner)
//
// What --repair does: rebuild the index from the metadata objects and the
// listing of artifacts (recreating a missing metadata object from an index
// entry that agrees with its artifact), rebuild the marks from history,
// drop marks of releases that do not exist, remove a stale or undecodable
// lock and undecodable hook markers, and remove leftovers. It never deletes
// an artifact, a metadata object or an event: those are the history.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Kinds of problems fsck reports.
const (
	// FsckCorrupt: the object exists but cannot be decoded.
	FsckCorrupt = "corrupt"
	// FsckMissingArtifact: metadata or an index entry names an artifact
	// that is not in the store.
	FsckMissingArtifact = "missing-artifact"
	// FsckMissingMetadata: the index lists a release whose metadata object
	// is gone.
	FsckMissingMetadata = "missing-metadata"
	// FsckIndexMismatch: an index entry disagrees with the release's
	// metadata it was made from.
	FsckIndexMismatch = "index-mismatch"
	// FsckArtifactMismatch: metadata disagrees with its artifact (size,
	// recorded SHA-256), or (--deep) the artifact's bytes do not hash to it.
	FsckArtifactMismatch = "artifact-mismatch"
	// FsckDanglingMark: a release mark names a release that does not exist.
	FsckDanglingMark = "dangling-mark"
	// FsckStaleLock: the lock's holder stopped heartbeating.
	FsckStaleLock = "stale-lock"
	// FsckLeftover: a temporary object of an interrupted upload or unpack.
	FsckLeftover = "leftover"
)

// Problem is one thing fsck found wrong.
type Problem struct {
	// Key is the object (or, for leftovers, the file or upload) at fault.
	Key string `json:"key"`
	// Commit is the release concerned, when there is one.
	Commit string `json:"commit,omitempty"`
	Kind   string `json:"kind"`
	// Detail says what is wrong and what it means for oops's commands.
	Detail string `json:"detail"`
	// Repairable: fsck --repair fixes it.
	Repairable bool `json:"repairable"`
	// Repaired: this run fixed it.
	Repaired bool `json:"repaired,omitempty"`
	// RepairError says why a repair was attempted and failed.
	RepairError string `json:"repair_error,omitempty"`
}

// Leftover is something an interrupted operation left behind: a temporary
// file, an unfinished multipart upload, a half-unpacked release.
type Leftover struct {
	// Name identifies it for people: a path, or a key and an upload ID.
	Name string
	// What says what left it, e.g. "temporary file of an interrupted write".
	What     string
	Size     int64
	Modified time.Time
	// ID is what RemoveLeftover needs (backend-specific).
	ID string
}

// LeftoverCleaner is implemented by backends and targets that keep
// temporary state which an interrupted operation can leave behind.
type LeftoverCleaner interface {
	// Leftovers lists what was last touched before olderThan.
	Leftovers(ctx context.Context, olderThan time.Time) ([]Leftover, error)
	// RemoveLeftover removes one of them.
	RemoveLeftover(ctx context.Context, l Leftover) error
}

// DefaultLeftoverAge is how old a temporary object must be before fsck
// calls it a leftover: older than any upload or unpack still running.
const DefaultLeftoverAge = 24 * time.Hour

// FsckOptions control Fsck.
type FsckOptions struct {
	App string
	// Deep re-reads every artifact and checks its SHA-256.
	Deep bool
	// Repair fixes what can be derived from immutable objects.
	Repair bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// LeftoverAge (0: DefaultLeftoverAge).
	LeftoverAge time.Duration
	// Leftovers are more places to look for leftovers (a target's unpack
	// directory); the store itself is asked when it is a LeftoverCleaner.
	Leftovers []LeftoverCleaner
	// Concurrency bounds parallel reads (0: a default).
	Concurrency int
}

// FsckResult is what Fsck found (and, with Repair, did).
type FsckResult struct {
	Problems []Problem `json:"problems"`
	// Counts of what was checked.
	Artifacts int `json:"artifacts"`
	Releases  int `json:"releases"`
	Events    int `json:"events"`
}

// Clean reports whether nothing is wrong any more: no problems, or every
// one repaired.
func (r *FsckResult) Clean() bool {
	for _, p := range r.Problems {
		if !p.Repaired {
			return false
		}
	}
	return true
}

// HooksPrefix is where `oops hook` keeps its per-deployment markers.
func HooksPrefix(app string) string { return app + "/" + MetaDir + "/hooks/" }

// releasesPrefix is where per-release metadata lives.
func releasesPrefix(app string) string { return app + "/" + MetaDir + "/releases/" }

type fsck struct {
	s    Store
	opts FsckOptions
	app  string
	res  *FsckResult

	artifacts map[string][]Object // by commit
	byKey     map[string]Object   // artifacts by key
	metaKeys  map[string]Object   // metadata objects by commit
	markers   map[string]Object   // adoption markers by commit
	events    []string
	hooks     []Object
	index     *Object // nil: no index object
	marks     *Object
	lock      *Object

	metas   map[string]release.Release // decodable metadata, by commit
	badMeta map[string]bool            // undecodable metadata
	idx     *indexState
	evs     []*release.Event // decoded events (nil where undecodable)
}

// Fsck checks app's objects in s. An error means the store could not be
// read at all; everything else is a Problem.
func Fsck(ctx context.Context, s Store, opts FsckOptions) (*FsckResult, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LeftoverAge <= 0 {
		opts.LeftoverAge = DefaultLeftoverAge
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = defaultEventReads
	}
	k := &fsck{
		s: s, opts: opts, app: opts.App, res: &FsckResult{},
		artifacts: map[string][]Object{}, byKey: map[string]Object{}, metaKeys: map[string]Object{}, markers: map[string]Object{},
		metas: map[string]release.Release{}, badMeta: map[string]bool{},
	}
	if err := k.list(ctx); err != nil {
		return nil, err
	}
	k.res.Artifacts = len(k.byKey)
	k.res.Releases = len(k.artifacts)
	k.res.Events = len(k.events)
	steps := []func(context.Context) error{k.loadIndex, k.checkMeta, k.checkIndex, k.checkEvents, k.checkMarks, k.checkLock, k.checkHooks, k.checkLeftovers}
	if opts.Deep {
		steps = append(steps, k.checkHashes)
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return k.res, err
		}
	}
	return k.res, nil
}

func (k *fsck) add(p Problem) *Problem {
	k.res.Problems = append(k.res.Problems, p)
	return &k.res.Problems[len(k.res.Problems)-1]
}

// repaired records the outcome of a repair on every problem of kinds at
// key (any key when key is "").
func (k *fsck) repaired(err error, match func(*Problem) bool) {
	for i := range k.res.Problems {
		p := &k.res.Problems[i]
		if !p.Repairable || p.Repaired || !match(p) {
			continue
		}
		if err != nil {
			p.RepairError = err.Error()
		} else {
			p.Repaired = true
		}
	}
}

// list reads the names of everything under <app>/ in one listing.
func (k *fsck) list(ctx context.Context) error {
	relPrefix, evPrefix, hookPrefix := releasesPrefix(k.app), EventsPrefix(k.app), HooksPrefix(k.app)
	err := k.s.List(ctx, k.app+"/", ListOptions{}, func(o Object) error {
		switch key := o.Key; {
		case key == IndexKey(k.app):
			k.index = &o
		case key == MarksKey(k.app):
			k.marks = &o
		case key == LockKey(k.app):
			k.lock = &o
		case strings.HasPrefix(key, relPrefix):
			if sha, ok := strings.CutSuffix(strings.TrimPrefix(key, relPrefix), ".json"); ok && release.IsFullSHA(sha) {
				k.metaKeys[sha] = o
			}
		case strings.HasPrefix(key, adoptedPrefix(k.app)):
			k.markers[strings.TrimPrefix(key, adoptedPrefix(k.app))] = o
		case strings.HasPrefix(key, evPrefix):
			if strings.HasSuffix(key, ".json") {
				k.events = append(k.events, key)
			}
		case strings.HasPrefix(key, hookPrefix):
			k.hooks = append(k.hooks, o)
		default:
			if sha, _, ok := release.ParseKey(k.app, key); ok {
				k.artifacts[sha] = append(k.artifacts[sha], o)
				k.byKey[key] = o
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s/ in %s: %w", k.app, k.s, err)
	}
	return nil
}

// readAll reads an object whole.
func (k *fsck) readAll(ctx context.Context, key string) ([]byte, Object, error) {
	rc, obj, err := k.s.Get(ctx, key)
	if err != nil {
		return nil, obj, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return data, obj, err
}

// decodeStrict decodes one JSON object and nothing after it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// parallel runs fn for 0..n-1 on a few workers.
func (k *fsck) parallel(n int, fn func(i int)) { parallel(n, k.opts.Concurrency, fn) }

// parallel calls fn(0) to fn(n-1), at most limit at a time, and returns
// when all have.
func parallel(n, limit int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(limit, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func sortedCommits[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// checkMeta reads every release's metadata and compares it with its
// artifact.
func (k *fsck) checkMeta(ctx context.Context) error {
	shas := sortedCommits(k.metaKeys)
	type read struct {
		rel release.Release
		err error
	}
	got := make([]read, len(shas))
	k.parallel(len(shas), func(i int) {
		data, _, err := k.readAll(ctx, k.metaKeys[shas[i]].Key)
		if err == nil {
			var r release.Release
			if err = decodeStrict(data, &r); err == nil && r.Commit != shas[i] {
				err = fmt.Errorf("it describes commit %q", r.Commit)
			} else if c, _, ok := release.ParseKey(k.app, r.Key); err == nil && (!ok || c != shas[i]) {
				// As List and Get, which take it for no metadata.
				err = fmt.Errorf("it names %q, not an artifact of this commit", r.Key)
			}
			got[i] = read{rel: r, err: err}
			return
		}
		got[i] = read{err: fmt.Errorf("read: %w", err)}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, sha := range shas {
		key := k.metaKeys[sha].Key
		if err := got[i].err; err != nil {
			k.badMeta[sha] = true
			ce := &CorruptError{Key: key, Err: err}
			p := Problem{Key: key, Commit: sha, Kind: FsckCorrupt,
				Detail: ce.Error() + "; oops lists the release as bare (no author, subject or checksum)"}
			if e, ok := k.indexEntry(sha); ok && k.agrees(sha, e) {
				p.Repairable = true
				p.Detail += "; --repair rewrites it from the index entry"
			} else {
				p.Detail += "; nothing to rebuild it from: remove it and publish the same file again"
			}
			k.add(p)
			continue
		}
		r := got[i].rel
		k.metas[sha] = r
		art, ok := k.byKey[r.Key]
		switch {
		case !ok:
			k.add(Problem{Key: key, Commit: sha, Kind: FsckMissingArtifact,
				Detail: fmt.Sprintf("metadata of %s names artifact %s, which is not in the store: it cannot be deployed; publish it again", release.Short(sha), r.Key)})
		case art.Size != r.Size:
			k.add(Problem{Key: r.Key, Commit: sha, Kind: FsckArtifactMismatch,
				Detail: fmt.Sprintf("the artifact is %d bytes but %s recorded %d at publish: it was changed or truncated after publishing; deploy will refuse it", art.Size, key, r.Size)})
		}
	}
	return nil
}

// indexState is the decoded index.
type indexState struct {
	m map[string]release.Release
	// metaETags: of the metadata objects the entries were made from
	// (the snapshots of the version before format 2).
	metaETags map[string]string
	refs      snapshotRefs
	corrupt   bool
}

// stale reports whether a listing reads sha's metadata rather than
// trusting the snapshot's entry: as for a release published since, the
// entry is then no problem.
func (k *fsck) stale(sha string, e release.Release) bool {
	m, marked := k.markers[sha]
	if !k.idx.refs.current() {
		// As trustOlder: without an ETag, a marker says the metadata
		// may have been rewritten since.
		e := k.idx.metaETags[sha]
		return (e != "" && e != k.metaKeys[sha].ETag) || (e == "" && marked)
	}
	ref, art := k.idx.refs.ArtifactETags[sha], k.byKey[e.Key]
	return ref == "" || (ref != bareRef(art) && ref != art.ETag) || (marked && k.idx.refs.Adopted[sha] != m.ETag)
}

func (k *fsck) indexEntry(sha string) (release.Release, bool) {
	if k.idx == nil {
		return release.Release{}, false
	}
	e, ok := k.idx.m[sha]
	return e, ok
}

// agrees reports whether the index entry of sha matches an artifact of
// sha in the store.
func (k *fsck) agrees(sha string, e release.Release) bool {
	art, ok := k.byKey[e.Key]
	s, _, _ := release.ParseKey(k.app, e.Key)
	return ok && art.Size == e.Size && e.SHA256 != "" && e.Commit == sha && s == sha
}

// loadIndex reads the index (first: the metadata check looks entries up).
func (k *fsck) loadIndex(ctx context.Context) error {
	k.idx = &indexState{m: map[string]release.Release{}}
	if k.index == nil {
		return nil
	}
	data, _, err := k.readAll(ctx, k.index.Key)
	var f indexFile
	if err == nil {
		err = decodeStrict(data, &f)
	}
	if err != nil {
		k.idx.corrupt = true
		ce := &CorruptError{Key: k.index.Key, Err: err}
		k.add(Problem{Key: k.index.Key, Kind: FsckCorrupt, Repairable: true,
			Detail: ce.Error() + "; list and publish cannot read it; --repair rebuilds it from the release metadata and the artifacts"})
		return ctx.Err()
	}
	if f.Releases != nil {
		k.idx.m = f.Releases
	}
	k.idx.metaETags, k.idx.refs = f.MetaETags, f.snapshotRefs
	return nil
}

// checkIndex compares the index with the metadata and the artifacts.
func (k *fsck) checkIndex(ctx context.Context) error {
	key := IndexKey(k.app)
	for _, sha := range sortedCommits(k.idx.m) {
		e := k.idx.m[sha]
		_, hasMeta := k.metaKeys[sha]
		meta, goodMeta := k.metas[sha]
		_, hasArt := k.byKey[e.Key]
		switch {
		case !hasMeta && !hasArt:
			k.add(Problem{Key: key, Commit: sha, Kind: FsckMissingArtifact, Repairable: true,
				Detail: fmt.Sprintf("the index lists %s at %s, which is not in the store, and it has no metadata; --repair drops the entry", release.Short(sha), e.Key)})
		case !hasMeta:
			p := Problem{Key: key, Commit: sha, Kind: FsckMissingMetadata, Repairable: true,
				Detail: fmt.Sprintf("the index lists %s but its metadata %s is gone", release.Short(sha), ReleaseMetaKey(k.app, sha))}
			if k.agrees(sha, e) {
				p.Detail += "; --repair recreates it from the index entry"
			} else {
				p.Detail += " and the entry does not match the artifact; --repair drops the entry"
			}
			k.add(p)
		case !goodMeta:
			// Reported with the metadata.
		case k.stale(sha, e):
			// Made from metadata rewritten since, or an artifact
			// replaced: list reads the metadata instead, as for a
			// release published since.
		case e.Commit != sha:
			k.add(Problem{Key: key, Commit: sha, Kind: FsckIndexMismatch, Repairable: true,
				Detail: fmt.Sprintf("the index entry of %s describes commit %q: oops list shows %s bare; --repair rewrites the entry from the metadata", release.Short(sha), e.Commit, release.Short(sha))})
		case e.Key != meta.Key || e.SHA256 != meta.SHA256 || e.Size != meta.Size:
			k.add(Problem{Key: key, Commit: sha, Kind: FsckIndexMismatch, Repairable: true,
				Detail: fmt.Sprintf("the index entry of %s (%s, %d bytes) disagrees with its metadata (%s, %d bytes); --repair rewrites the entry from the metadata", release.Short(sha), e.Key, e.Size, meta.Key, meta.Size)})
		}
	}
	k.checkBare()
	if k.opts.Repair && k.indexNeedsRepair() {
		err := k.rebuildIndex(ctx)
		k.repaired(err, func(p *Problem) bool {
			switch p.Kind {
			case FsckMissingMetadata, FsckIndexMismatch:
				return true
			case FsckCorrupt:
				return p.Key == key || strings.HasPrefix(p.Key, releasesPrefix(k.app))
			case FsckMissingArtifact:
				return p.Key == key
			}
			return false
		})
	}
	return nil
}

// checkBare finds commits the snapshot records as bare, which listings
// trust, that have metadata listings would not read: adopted by an oops
// that left no marker, or a marker lost.
func (k *fsck) checkBare() {
	if !k.idx.refs.current() {
		return
	}
	for _, sha := range sortedCommits(k.idx.refs.Bare) {
		arts, meta := k.artifacts[sha], k.metaKeys[sha]
		m, marked := k.markers[sha]
		if len(arts) == 0 || meta.Key == "" || bareRef(arts[0]) != k.idx.refs.Bare[sha] || (marked && k.idx.refs.Adopted[sha] != m.ETag) {
			continue
		}
		k.add(Problem{Key: IndexKey(k.app), Commit: sha, Kind: FsckIndexMismatch, Repairable: true,
			Detail: fmt.Sprintf("the index records %s as bare, but it has metadata (%s): oops list shows it bare; --repair rewrites the index from the metadata", release.Short(sha), meta.Key)})
	}
}

func (k *fsck) indexNeedsRepair() bool {
	for _, p := range k.res.Problems {
		if p.Repairable && (p.Key == IndexKey(k.app) || strings.HasPrefix(p.Key, releasesPrefix(k.app))) {
			return true
		}
	}
	return false
}

// rebuildIndex writes the index from the metadata objects whose artifact
// exists, recreating (or rewriting, when undecodable) metadata from index
// entries that agree with their artifact.
func (k *fsck) rebuildIndex(ctx context.Context) error {
	m := map[string]release.Release{}
	refs := snapshotRefs{Format: snapshotFormat, ArtifactETags: map[string]string{}, Bare: map[string]string{}, Adopted: map[string]string{}}
	for sha, r := range k.metas {
		if art, ok := k.byKey[r.Key]; ok && art.Size == r.Size {
			r.ETag = ""
			m[sha] = r
			refs.ArtifactETags[sha] = bareRef(art)
		}
	}
	for sha, e := range k.idx.m {
		if _, ok := m[sha]; ok || !k.agrees(sha, e) {
			continue
		}
		if _, bad := k.metas[sha]; bad {
			continue // decodable metadata that disagrees: not ours to decide
		}
		e.ETag = ""
		data, err := json.MarshalIndent(e, "", "  ")
		if err != nil {
			return err
		}
		mk := ReleaseMetaKey(k.app, sha)
		if old, ok := k.metaKeys[sha]; ok && k.badMeta[sha] {
			_, err = k.s.Replace(ctx, mk, data, old.ETag)
		} else {
			_, err = k.s.Create(ctx, mk, bytes.NewReader(data), int64(len(data)), nil)
		}
		if err != nil {
			return fmt.Errorf("rewrite %s: %w", mk, err)
		}
		m[sha] = e
		refs.ArtifactETags[sha] = bareRef(k.byKey[e.Key])
	}
	// Every metadata object was read: every marker is folded in, and a
	// commit without metadata is bare, unless oops is publishing it.
	for sha, o := range k.markers {
		refs.Adopted[sha] = o.ETag
	}
	var bare []string
	for sha := range k.artifacts {
		if _, ok := k.metaKeys[sha]; !ok {
			if _, ok := m[sha]; !ok {
				bare = append(bare, sha)
			}
		}
	}
	// Not a publish between its two writes, whose metadata, written
	// after this index, listings would never read: as List records them.
	sure := make([]bool, len(bare))
	k.parallel(len(bare), func(i int) {
		o, err := k.s.Stat(ctx, k.artifacts[bare[i]][0].Key)
		sure[i] = err == nil && uploadedBare(o)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, sha := range bare {
		if sure[i] {
			refs.Bare[sha] = bareRef(k.artifacts[sha][0])
		}
	}
	data, err := json.Marshal(indexFile{Version: 1, Releases: m, snapshotRefs: refs})
	if err != nil {
		return err
	}
	key := IndexKey(k.app)
	if k.index != nil {
		_, err = k.s.Replace(ctx, key, data, k.index.ETag)
	} else {
		_, err = k.s.Create(ctx, key, bytes.NewReader(data), int64(len(data)), nil)
	}
	if errors.Is(err, ErrPrecondition) || errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) {
		return fmt.Errorf("rewrite %s: it changed while fsck ran (a publish?): run oops fsck --repair again", key)
	}
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", key, err)
	}
	return nil
}

// checkEvents decodes every event; it keeps them for rebuilding marks.
func (k *fsck) checkEvents(ctx context.Context) error {
	k.evs = make([]*release.Event, len(k.events))
	errs := make([]error, len(k.events))
	k.parallel(len(k.events), func(i int) {
		data, _, err := k.readAll(ctx, k.events[i])
		if err != nil {
			errs[i] = fmt.Errorf("read: %w", err)
			return
		}
		var ev release.Event
		if err := decodeStrict(data, &ev); err != nil {
			errs[i] = err
			return
		}
		if ev.Action == "" || ev.Time.IsZero() {
			errs[i] = errors.New("not an oops event (no action or time)")
			return
		}
		k.evs[i] = &ev
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, err := range errs {
		if err != nil {
			ce := &CorruptError{Key: k.events[i], Err: err}
			k.add(Problem{Key: k.events[i], Kind: FsckCorrupt,
				Detail: ce.Error() + "; history leaves it out; events are never deleted (move it away by hand to silence this)"})
		}
	}
	return nil
}

// checkMarks decodes the marks and checks each names a release.
func (k *fsck) checkMarks(ctx context.Context) error {
	if k.marks == nil {
		return nil
	}
	data, obj, err := k.readAll(ctx, k.marks.Key)
	var f marksFile
	if err == nil {
		err = decodeStrict(data, &f)
	}
	if err != nil {
		ce := &CorruptError{Key: k.marks.Key, Err: err}
		k.add(Problem{Key: k.marks.Key, Kind: FsckCorrupt, Repairable: true,
			Detail: ce.Error() + "; BAD releases are not known to list, deploy and rollback; --repair rebuilds the marks from history"})
		if k.opts.Repair {
			err := k.rebuildMarks(ctx, obj.ETag)
			k.repaired(err, func(p *Problem) bool { return p.Key == k.marks.Key })
		}
		return nil
	}
	var dangling []string
	for _, sha := range sortedCommits(f.Releases) {
		if _, ok := k.artifacts[sha]; !ok {
			dangling = append(dangling, sha)
			k.add(Problem{Key: k.marks.Key, Commit: sha, Kind: FsckDanglingMark, Repairable: true,
				Detail: fmt.Sprintf("marks name %s, which is not published: --repair drops the mark", release.Short(sha))})
		}
	}
	if k.opts.Repair && len(dangling) > 0 {
		err := UpdateMarks(ctx, k.s, k.app, func(m Marks) {
			for _, sha := range dangling {
				delete(m, sha)
			}
		})
		k.repaired(err, func(p *Problem) bool { return p.Kind == FsckDanglingMark })
	}
	return nil
}

// rebuildMarks replays history, oldest first, into new marks of the
// releases that exist.
func (k *fsck) rebuildMarks(ctx context.Context, etag string) error {
	var evs []*release.Event
	for _, ev := range k.evs {
		if ev != nil {
			evs = append(evs, ev)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	m := Marks{}
	for _, ev := range evs {
		m.ApplyEvent(ev)
	}
	for sha := range m {
		if _, ok := k.artifacts[sha]; !ok {
			delete(m, sha)
		}
	}
	body, err := encodeMarks(m)
	if err != nil {
		return err
	}
	if _, err := k.s.Replace(ctx, MarksKey(k.app), body, etag); err != nil {
		return fmt.Errorf("rewrite %s: %w (run oops fsck --repair again)", MarksKey(k.app), err)
	}
	return nil
}

// checkLock reports an undecodable or stale lock.
func (k *fsck) checkLock(ctx context.Context) error {
	if k.lock == nil {
		return nil
	}
	data, obj, err := k.readAll(ctx, k.lock.Key)
	if errors.Is(err, ErrNotFound) {
		return nil // released meanwhile
	}
	now := k.opts.Now()
	var info LockInfo
	if err == nil {
		err = decodeStrict(data, &info)
	}
	var p *Problem
	switch {
	case err != nil:
		ce := &CorruptError{Key: k.lock.Key, Err: err}
		stale := now.Sub(obj.Modified) > DefaultLockTTL
		p = k.add(Problem{Key: k.lock.Key, Kind: FsckCorrupt, Repairable: stale,
			Detail: ce.Error() + fmt.Sprintf("; it blocks every change until it is %s old", DefaultLockTTL)})
		if stale {
			p.Detail += "; --repair releases it"
		}
	case info.Released:
		return nil // a released lock's tombstone: it keeps the generation
	case info.Stale(now):
		p = k.add(Problem{Key: k.lock.Key, Kind: FsckStaleLock, Repairable: true,
			Detail: fmt.Sprintf("lock of %s (%q) without a heartbeat for %s: the holder died; the next command takes it over, --repair releases it",
				info.Describe(), info.Command, now.Sub(info.Heartbeat).Round(time.Second))})
	default:
		return nil
	}
	if k.opts.Repair && p.Repairable {
		// Only the version read: a holder that just took it keeps it. The
		// lock is released as a holder releases it, to a tombstone that
		// keeps its generation (0 when unreadable: the next holder's then
		// starts from the wall clock), not deleted.
		info.App = k.app
		_, err := k.s.Replace(ctx, k.lock.Key, tombstone(info, now), obj.ETag)
		if err != nil {
			err = fmt.Errorf("release %s: %w", k.lock.Key, err)
		}
		k.repaired(err, func(q *Problem) bool { return q.Key == k.lock.Key })
	}
	return nil
}

// hookMarker is what `oops hook` records per deployment (cmd/hook.go).
type hookMarker struct {
	Deployment string        `json:"deployment"`
	Color      release.Color `json:"color"`
	Switched   bool          `json:"switched"`
	Time       time.Time     `json:"time"`
}

// checkHooks decodes every hook marker; an undecodable one older than
// the leftover age belongs to a deployment that is long over.
func (k *fsck) checkHooks(ctx context.Context) error {
	for _, o := range k.hooks {
		data, obj, err := k.readAll(ctx, o.Key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		var m hookMarker
		if err == nil {
			err = decodeStrict(data, &m)
		}
		if err == nil && !m.Color.Valid() {
			err = fmt.Errorf("color %q is not blue or green", m.Color)
		}
		if err == nil {
			continue
		}
		ce := &CorruptError{Key: o.Key, Err: err}
		old := k.opts.Now().Sub(obj.Modified) > k.opts.LeftoverAge
		p := k.add(Problem{Key: o.Key, Kind: FsckCorrupt, Repairable: old,
			Detail: ce.Error() + "; `oops hook` fails for that deployment"})
		if !old {
			p.Detail += fmt.Sprintf("; --repair removes it once it is %s old", k.opts.LeftoverAge)
			continue
		}
		p.Detail += "; its deployment is over: --repair removes it"
		if k.opts.Repair {
			err := k.s.Delete(ctx, o.Key, obj.ETag)
			if err != nil {
				err = fmt.Errorf("remove %s: %w", o.Key, err)
			}
			k.repaired(err, func(q *Problem) bool { return q.Key == o.Key })
		}
	}
	return nil
}

// checkLeftovers asks the store and the extra places for leftovers.
func (k *fsck) checkLeftovers(ctx context.Context) error {
	cleaners := append([]LeftoverCleaner(nil), k.opts.Leftovers...)
	if lc, ok := k.s.(LeftoverCleaner); ok {
		cleaners = append([]LeftoverCleaner{lc}, cleaners...)
	}
	before := k.opts.Now().Add(-k.opts.LeftoverAge)
	for _, lc := range cleaners {
		ls, err := lc.Leftovers(ctx, before)
		if err != nil {
			return fmt.Errorf("look for leftovers: %w", err)
		}
		for _, l := range ls {
			p := k.add(Problem{Key: l.Name, Kind: FsckLeftover, Repairable: true,
				Detail: fmt.Sprintf("%s, %d bytes, last touched %s: --repair removes it", l.What, l.Size, l.Modified.UTC().Format(time.RFC3339))})
			if k.opts.Repair {
				if err := lc.RemoveLeftover(ctx, l); err != nil {
					p.RepairError = fmt.Sprintf("remove %s: %v", l.Name, err)
				} else {
					p.Repaired = true
				}
			}
		}
	}
	return nil
}

// checkHashes re-reads every artifact and compares its SHA-256 with the
// metadata and with the checksum stored on the artifact.
func (k *fsck) checkHashes(ctx context.Context) error {
	keys := sortedCommits(k.byKey)
	type sum struct {
		hex, recorded string
		err           error
	}
	sums := make([]sum, len(keys))
	k.parallel(len(keys), func(i int) {
		rc, obj, err := k.s.Get(ctx, keys[i])
		if err != nil {
			sums[i].err = err
			return
		}
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			sums[i].err = err
			return
		}
		sums[i] = sum{hex: hex.EncodeToString(h.Sum(nil)), recorded: obj.Meta[MetaSHA256]}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, key := range keys {
		s := sums[i]
		sha, _, _ := release.ParseKey(k.app, key)
		if s.err != nil {
			k.add(Problem{Key: key, Commit: sha, Kind: FsckArtifactMismatch, Detail: fmt.Sprintf("cannot read the artifact: %v", s.err)})
			continue
		}
		want, from := s.recorded, "the checksum stored with the artifact"
		if m, ok := k.metas[sha]; ok && m.Key == key && m.SHA256 != "" {
			want, from = m.SHA256, ReleaseMetaKey(k.app, sha)
		}
		if want != "" && want != s.hex {
			k.add(Problem{Key: key, Commit: sha, Kind: FsckArtifactMismatch,
				Detail: fmt.Sprintf("the artifact's bytes hash to sha256 %s, but %s says %s: it changed after publishing; deploy refuses it; publish a new commit", abbrev(s.hex), from, abbrev(want))})
		}
	}
	return nil
}
