package store

// The release index.
//
// Layout under the store (the artifact keys are the original tool's, so
// CodeDeploy and buckets filled by other CI keep working):
//
//	<app>/<app>-<full-sha>.<ext>        the artifact; user metadata sha256
//	                                    and oops-commit
//	<app>/.oops/releases/<sha>.json     one release's metadata, written once
//	<app>/.oops/index.json              snapshot: many releases' metadata in
//	                                    one object (a cache, see below)
//	<app>/.oops/adopted/<sha>           a time: metadata written for an
//	                                    artifact publish did not upload,
//	                                    or rewritten (AdoptedKey)
//
// Publish writes in this order: artifact (Create, If-None-Match, so only
// one publisher of a commit can win), then its metadata (Create). That is
// all: two objects of the release's own size whatever the number of
// releases, and concurrent publishers never write the same key, so they
// never contend. A crash between the two leaves nothing wrong, only
// something missing, and re-running the same publish finds the artifact
// with the same bytes and writes what is missing (and the adoption marker,
// as for a bare zip of other CI published by oops).
//
// index.json is a compacted snapshot of the metadata objects, so that
// listing costs requests per page of artifact keys, not per release. Older
// oops versions kept it complete on every publish (a compare-and-swap of
// the whole object: 4.6 MB moved per publish at 10,000 releases); it keeps
// their format (version, releases), so they still read it. Format 2 adds
// the ETag of the artifact each entry describes, the commits found bare
// (ETag and time of their artifact) and the adoption markers folded in.
//
// List (listing.go) reads, in one wave of concurrent requests: the
// artifact keys, the adoption markers, the snapshot and the marks. On S3
// the artifact keys are listed as the 16 ranges of the commit's first hex
// digit, so a listing is one round trip per 1000 keys of a range (up to
// 16,000 releases: one). An entry is trusted when its artifact is listed
// with the recorded ETag and time (uploaded again, it has another time,
// and its publish wrote the metadata again) and no newer marker says its
// metadata was written since; a bare commit when its artifact is listed
// as recorded. The rest were published since, or changed: their metadata
// objects are read, concurrently (not found: bare), and when there were
// more than compactAfter of them a new snapshot is written with a
// conditional write (best effort: a read-only user lists all the same).
// A snapshot of older oops (or none) also needs the metadata keys listed,
// as those versions did, and the first full listing rewrites it in
// format 2.
//
import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oops-deploy/oops/release"
)

// Metadata keys on artifacts.
const (
	MetaSHA256 = "sha256"
	MetaCommit = "oops-commit"
)

// Index is the release index of one application.
type Index struct {
	s   Store
	app string
	// OnCorrupt, when set, is told about bookkeeping that exists but cannot
	// be decoded (the index, a release's metadata) and what the reader does
	// instead; the reader then goes on without it. Without it such an
	// object is an error.
	OnCorrupt func(err *CorruptError, instead string)
	// Generation, when set, is a commit's generation number in git (a
	// descendant's is always higher than its ancestors'), false when
	// unknown: List orders releases published at the same instant, from
	// the same commit time, descendant first.
	Generation func(sha string) (int, bool)
}

// readAround reports err through OnCorrupt and returns true when err is a
// *CorruptError that the caller may read around.
func (x *Index) readAround(err error, instead string) bool {
	var ce *CorruptError
	if x.OnCorrupt == nil || !errors.As(err, &ce) {
		return false
	}
	x.OnCorrupt(ce, instead)
	return true
}

// NewIndex returns the index of app in s.
func NewIndex(s Store, app string) *Index { return &Index{s: s, app: app} }

// Store is the store the index lives in.
func (x *Index) Store() Store { return x.s }

// App is the application name.
func (x *Index) App() string { return x.app }

// IndexKey is the consolidated metadata object of app.
func IndexKey(app string) string { return app + "/" + MetaDir + "/index.json" }

// AdoptedKey is the adoption marker of a commit: written when publish
// writes metadata for an artifact it did not upload (a bare zip of other
// CI, or one whose metadata was lost), which the artifact listing cannot
// show, or rewrites metadata that a listing may have read with the
// artifact it just uploaded (a republish of other bytes). It holds the
// time it was written at, rewritten by each such write.
func AdoptedKey(app, sha string) string { return adoptedPrefix(app) + sha }

func adoptedPrefix(app string) string { return app + "/" + MetaDir + "/adopted/" }

// ReleaseMetaKey is the per-release metadata object.
func ReleaseMetaKey(app, sha string) string {
	return app + "/" + MetaDir + "/releases/" + sha + ".json"
}

// PublishInput is one artifact to publish.
type PublishInput struct {
	// Commit is the full SHA the artifact was built from.
	Commit string
	// Ext is the artifact format: ".zip", ".tar.gz" or ".tgz".
	Ext  string
	Body io.ReadSeeker
	Size int64
	// Info describes the commit (author, subject, ...); may be empty.
	Info      release.Info
	Publisher string
	// Now is the publish time (zero: the clock).
	Now time.Time
	// Progress, when set, wraps the body while it is uploaded.
	Progress func(io.Reader) io.Reader
	// DryRun checks everything and writes nothing.
	DryRun bool
	// Dirty records that the working tree differed from the commit
	// (oops publish --allow-dirty).
	Dirty bool
}

// Outcome is what a publish changed in the store.
type Outcome int

const (
	// Unchanged: the same bytes and their metadata were published already.
	Unchanged Outcome = iota
	// Created: the artifact and its metadata were written.
	Created
	// Recorded: the artifact was stored already without oops metadata (a
	// zip uploaded by other CI, a publish that died between its writes);
	// its metadata was written.
	Recorded
)

// Publish stores an artifact and its metadata. It returns the release and
// what this call changed: publishing the same bytes again changes nothing
// (Unchanged) or writes missing metadata (Recorded); different bytes for a
// published commit fail with ErrImmutable and change nothing. With
// in.DryRun it says what it would change.
func (x *Index) Publish(ctx context.Context, in PublishInput) (release.Release, Outcome, error) {
	if !release.IsFullSHA(in.Commit) {
		return release.Release{}, Unchanged, fmt.Errorf("publish: %q is not a full commit SHA", in.Commit)
	}
	if !validExt(in.Ext) {
		return release.Release{}, Unchanged, fmt.Errorf("publish: unknown artifact type %q (use %s)", in.Ext, strings.Join(release.Extensions, ", "))
	}
	sum, size, err := hashBody(in.Body)
	if err != nil {
		return release.Release{}, Unchanged, fmt.Errorf("publish %s: read artifact: %w", release.Short(in.Commit), err)
	}
	if in.Size >= 0 && in.Size != size {
		return release.Release{}, Unchanged, fmt.Errorf("publish %s: artifact is %d bytes, expected %d (changed while reading?)", release.Short(in.Commit), size, in.Size)
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	rel := release.Release{
		Commit:      in.Commit,
		App:         x.app,
		Key:         release.Key(x.app, in.Commit, in.Ext),
		Size:        size,
		SHA256:      sum,
		Published:   now.UTC(), // sub-second: list orders by it
		Publisher:   in.Publisher,
		Author:      in.Info.Author,
		AuthorEmail: in.Info.Email,
		Subject:     in.Info.Subject,
		CommitTime:  in.Info.Time,
		Branch:      in.Info.Branch,
		Tags:        in.Info.Tags,
		Dirty:       in.Dirty,
	}

	for attempt := 0; ; attempt++ {
		existing, err := x.artifact(ctx, in.Commit)
		if err != nil {
			return release.Release{}, Unchanged, fmt.Errorf("publish %s: %w", release.Short(in.Commit), err)
		}
		if existing != nil {
			r, recorded, err := x.adopt(ctx, rel, *existing, in.DryRun)
			if recorded {
				return r, Recorded, err
			}
			return r, Unchanged, err
		}
		if in.DryRun {
			return rel, Created, nil
		}
		if _, err := in.Body.Seek(0, io.SeekStart); err != nil {
			return release.Release{}, Unchanged, fmt.Errorf("publish %s: rewind artifact: %w", release.Short(in.Commit), err)
		}
		// Hash what is uploaded too: a file rewritten since it was hashed
		// (a build still writing it) must not be stored under the hash
		// of other bytes, where every deploy would fail to verify it.
		up := sha256.New()
		var body io.Reader = io.TeeReader(in.Body, up)
		if in.Progress != nil {
			body = in.Progress(body)
		}
		obj, err := x.s.Create(ctx, rel.Key, body, size, map[string]string{MetaSHA256: sum, MetaCommit: in.Commit})
		if errors.Is(err, ErrExists) && attempt == 0 {
			continue // someone published it meanwhile: compare with theirs
		}
		if err != nil {
			return release.Release{}, Unchanged, fmt.Errorf("publish %s: %w", release.Short(in.Commit), err)
		}
		if got := hex.EncodeToString(up.Sum(nil)); got != sum {
			derr := x.s.Delete(ctx, rel.Key, obj.ETag)
			msg := "it was removed"
			if derr != nil {
				msg = fmt.Sprintf("removing it failed (%v): delete %s before publishing again", derr, rel.Key)
			}
			return release.Release{}, Unchanged, fmt.Errorf("publish %s: the artifact changed while it was published (sha256 %s when hashed, %s when uploaded); %s. Publish it again once the build has finished writing it",
				release.Short(in.Commit), abbrev(sum), abbrev(got), msg)
		}
		rel.ETag = obj.ETag
		_, replaced, err := x.writeMeta(ctx, rel)
		if err != nil {
			return rel, Created, err
		}
		if replaced {
			// A listing between the two writes may have taken the old
			// metadata for this artifact's: the marker has it read again.
			if _, err := x.markAdopted(ctx, rel.Commit, true); err != nil {
				return rel, Created, fmt.Errorf("publish %s: mark its metadata rewritten (oops fsck --repair finds a listing that kept the old one): %w", release.Short(in.Commit), err)
			}
		}
		return rel, Created, nil
	}
}

func validExt(ext string) bool {
	for _, e := range release.Extensions {
		if e == ext {
			return true
		}
	}
	return false
}

func hashBody(r io.ReadSeeker) (string, int64, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// artifact finds the stored artifact of commit, in any format: the first
// in key order when there are several. It asks for each format's key at
// once (a HEAD each on S3) rather than listing the commit's prefix: a
// lookup costs the same however many keys the store holds, where a
// listing's cost may grow with them (moto scans every key).
func (x *Index) artifact(ctx context.Context, sha string) (*Object, error) {
	found := make([]*Object, len(release.Extensions))
	errs := make([]error, len(release.Extensions))
	var wg sync.WaitGroup
	for i, ext := range release.Extensions {
		wg.Go(func() {
			o, err := x.s.Stat(ctx, release.Key(x.app, sha, ext))
			switch {
			case err == nil:
				found[i] = &o
			case !errors.Is(err, ErrNotFound):
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("look for an existing release: %w", err)
	}
	var first *Object
	for _, o := range found {
		if o != nil && (first == nil || o.Key < first.Key) {
			first = o
		}
	}
	return first, nil
}

// adopt handles an artifact that is already stored for the commit: same
// bytes make publish a no-op that writes any missing metadata (recorded:
// it did, or would with dryRun); anything else is refused.
func (x *Index) adopt(ctx context.Context, want release.Release, have Object, dryRun bool) (rel release.Release, recorded bool, err error) {
	short := release.Short(want.Commit)
	if have.Key != want.Key {
		return release.Release{}, false, fmt.Errorf("publish %s: %w: %s is already published as %s; publish a new commit instead",
			short, ErrImmutable, short, have.Key)
	}
	meta, _, err := x.readReleaseMeta(ctx, want.Commit)
	if err != nil && !errors.Is(err, ErrNotFound) && !x.readAround(err, "rewriting it from the artifact") {
		return release.Release{}, false, fmt.Errorf("publish %s: %w", short, err)
	}
	if !describes(meta, want.Commit, have.Key) {
		// Of another commit (copied by hand), or of an artifact not
		// stored: it describes nothing here, and writeMeta replaces it.
		meta = release.Release{}
	}
	haveSum := meta.SHA256
	if haveSum == "" || meta.Size != have.Size {
		// No metadata (a bare upload, or a publish that died before
		// writing it): the artifact's own checksum, else its bytes.
		if haveSum, err = x.artifactSum(ctx, have.Key); err != nil {
			return release.Release{}, false, fmt.Errorf("publish %s: %w", short, err)
		}
	}
	if haveSum != want.SHA256 {
		return release.Release{}, false, fmt.Errorf("publish %s: %w: %s holds different bytes (sha256 %s, this file %s); a release never changes, publish a new commit instead",
			short, ErrImmutable, have.Key, abbrev(haveSum), abbrev(want.SHA256))
	}
	rel = want
	rel.ETag = have.ETag
	if meta.SHA256 == haveSum {
		rel = meta // what the first publisher recorded stays
		rel.ETag = have.ETag
	} else {
		// Adopting a bare upload: it was published when it was uploaded.
		rel.Published = have.Modified.UTC()
	}
	if dryRun {
		if meta.SHA256 != haveSum {
			return rel, true, nil
		}
		if have.Meta[MetaCommit] != "" {
			return rel, false, nil
		}
		// A bare upload with its metadata: publish writes the marker if an
		// adoption left none, and the release no longer lists bare.
		_, err := x.s.Stat(ctx, AdoptedKey(x.app, rel.Commit))
		if errors.Is(err, ErrNotFound) {
			return rel, true, nil
		}
		if err != nil {
			return release.Release{}, false, fmt.Errorf("publish %s: %w", short, err)
		}
		return rel, false, nil
	}
	wrote, _, err := x.writeMeta(ctx, rel)
	if err != nil || (!wrote && have.Meta[MetaCommit] != "") {
		// Nothing written for an artifact oops uploaded: no listing has
		// anything to learn (and no marker per no-op republish).
		return rel, wrote, err
	}
	// Metadata for an artifact that listings may know as bare, or by
	// other metadata: the marker tells them to read it. Also when this
	// publish found the metadata written: an adoption that failed to
	// leave its marker is finished by publishing again, which records it
	// as much as writing the metadata does.
	marked, err := x.markAdopted(ctx, rel.Commit, wrote)
	if err != nil {
		return rel, wrote, fmt.Errorf("publish %s: mark it adopted (run the same publish again to finish): %w", short, err)
	}
	return rel, wrote || marked, nil
}

// markAdopted writes the adoption marker of sha, or, when again, a new
// version of it: listings that folded in an earlier adoption know the
// marker's ETag, and would not read metadata written since. It holds the
// time, since S3's ETag is the MD5 of the bytes: markers written again
// with the same bytes would keep it.
func (x *Index) markAdopted(ctx context.Context, sha string, again bool) (created bool, err error) {
	key := AdoptedKey(x.app, sha)
	body := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	_, err = x.s.Create(ctx, key, bytes.NewReader(body), int64(len(body)), nil)
	if !errors.Is(err, ErrExists) {
		return err == nil, err
	}
	if !again {
		return false, nil
	}
	o, err := x.s.Stat(ctx, key)
	if err != nil {
		return false, err
	}
	_, err = x.s.Replace(ctx, key, body, o.ETag)
	if errors.Is(err, ErrPrecondition) {
		return false, nil // rewritten meanwhile, by another adoption: as good
	}
	return false, err
}

func abbrev(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// artifactSum is the SHA-256 of a stored artifact: from its metadata, or by
// reading it.
func (x *Index) artifactSum(ctx context.Context, key string) (string, error) {
	rc, obj, err := x.s.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("read stored artifact: %w", err)
	}
	defer rc.Close()
	if s := obj.Meta[MetaSHA256]; s != "" {
		return s, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", fmt.Errorf("read stored artifact %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (x *Index) readReleaseMeta(ctx context.Context, sha string) (release.Release, string, error) {
	rc, obj, err := x.s.Get(ctx, ReleaseMetaKey(x.app, sha))
	if err != nil {
		return release.Release{}, "", err
	}
	defer rc.Close()
	var r release.Release
	if err := json.NewDecoder(rc).Decode(&r); err != nil {
		return release.Release{}, obj.ETag, fmt.Errorf("read release metadata: %w", &CorruptError{Key: ReleaseMetaKey(x.app, sha), Err: err})
	}
	return r, obj.ETag, nil
}

// writeMeta makes sure the per-release metadata object exists and says
// what the artifact holds, and reports whether it wrote it, and whether
// over other metadata. The snapshot is not touched: List finds the new
// artifact, or the adoption marker, in its listing and folds the metadata
// in later.
func (x *Index) writeMeta(ctx context.Context, rel release.Release) (wrote, replaced bool, err error) {
	short := release.Short(rel.Commit)
	stored := rel
	stored.ETag = "" // the artifact's version token, not metadata
	data, err := json.MarshalIndent(stored, "", "  ")
	if err != nil {
		return false, false, err
	}
	key := ReleaseMetaKey(x.app, rel.Commit)
	wrote = true
	_, err = x.s.Create(ctx, key, bytes.NewReader(data), int64(len(data)), nil)
	if errors.Is(err, ErrExists) {
		// Left by an earlier publish whose artifact was deleted since, or
		// corrupt: the artifact just stored (or checked) is the truth.
		old, etag, rerr := x.readReleaseMeta(ctx, rel.Commit)
		var ce *CorruptError
		switch {
		case rerr == nil && (old.SHA256 != rel.SHA256 || !describes(old, rel.Commit, rel.Key)), errors.As(rerr, &ce):
			_, err = x.s.Replace(ctx, key, data, etag)
			replaced = true
		default:
			err, wrote = rerr, false
		}
	}
	if err != nil {
		return false, false, fmt.Errorf("publish %s: write metadata (run the same publish again to repair): %w", short, err)
	}
	return wrote, replaced, nil
}

// describes reports whether metadata m is of commit sha's artifact at
// key: metadata of another commit, or of an artifact no longer stored,
// lists nothing.
func describes(m release.Release, sha, key string) bool {
	return m.Commit == sha && m.Key == key
}

// sortNewestFirst orders releases by publish time, newest first; ties fall
// by commit time (newer first), then by generation when x.Generation knows
// it (a descendant before its ancestors; known before unknown), then by
// SHA, so the order never depends on the store's listing. Generations are
// only asked for ties.
func (x *Index) sortNewestFirst(rels []release.Release) {
	gen := func(sha string) int {
		if x.Generation == nil {
			return 0
		}
		g, ok := x.Generation(sha)
		if !ok {
			return 0
		}
		return g
	}
	// slices.SortFunc on pointers, not sort.Slice on values: a Release is
	// 300 bytes, and sort.Slice's reflective swaps of them were half the
	// sort of oops list's 10,000.
	ptrs := make([]*release.Release, len(rels))
	for i := range rels {
		ptrs[i] = &rels[i]
	}
	slices.SortFunc(ptrs, func(a, b *release.Release) int {
		if c := b.Published.Compare(a.Published); c != 0 {
			return c
		}
		if c := b.CommitTime.Compare(a.CommitTime); c != 0 {
			return c
		}
		if ga, gb := gen(a.Commit), gen(b.Commit); ga != gb {
			return cmp.Compare(gb, ga)
		}
		return strings.Compare(b.Commit, a.Commit)
	})
	sorted := make([]release.Release, len(rels))
	for i, p := range ptrs {
		sorted[i] = *p
	}
	copy(rels, sorted)
}

// describe joins a commit's artifacts with its index entry: the artifact
// oops published, with its metadata, or else the first one, bare.
func (x *Index) describe(sha string, objs []Object, m map[string]release.Release) release.Release {
	// Metadata of another commit (copied by hand, or hostile) describes
	// nothing here: listing it would show that commit twice.
	if r, ok := m[sha]; ok && r.Commit == sha {
		for _, o := range objs {
			if o.Key == r.Key {
				r.ETag, r.Bare = o.ETag, false
				return r
			}
		}
	}
	o := objs[0]
	return release.Release{Commit: sha, App: x.app, Key: o.Key, Size: o.Size, ETag: o.ETag, Published: o.Modified, Bare: true}
}

// Get returns the release of a commit, or an error wrapping
// release.ErrNotPublished.
//
// A commit oops published is its published artifact, whatever else is
// stored for it: another artifact of the same commit (another extension,
// uploaded by other CI or by someone with write access to the store) would
// come first in the listing, and would be deployed bare, unverified.
func (x *Index) Get(ctx context.Context, sha string) (release.Release, error) {
	meta, _, err := x.readReleaseMeta(ctx, sha)
	if err != nil && !errors.Is(err, ErrNotFound) && !x.readAround(err, "using the artifact without it") {
		return release.Release{}, err
	}
	if s, _, ok := release.ParseKey(x.app, meta.Key); err == nil && ok && s == sha && meta.Commit == sha {
		obj, err := x.s.Stat(ctx, meta.Key)
		if errors.Is(err, ErrNotFound) {
			return release.Release{}, fmt.Errorf("%s: %w: %s, which oops published for it, is gone from %s (another artifact of the commit is not what was published: put the published one back from its build)",
				release.Short(sha), release.ErrNotPublished, meta.Key, x.s)
		}
		if err != nil {
			return release.Release{}, fmt.Errorf("%s: read %s: %w", release.Short(sha), meta.Key, err)
		}
		meta.ETag = obj.ETag
		return meta, nil
	}
	obj, err := x.artifact(ctx, sha)
	if err != nil {
		return release.Release{}, err
	}
	if obj == nil {
		return release.Release{}, fmt.Errorf("%s: %w in %s", release.Short(sha), release.ErrNotPublished, x.s)
	}
	return release.Release{Commit: sha, App: x.app, Key: obj.Key, Size: obj.Size, ETag: obj.ETag, Published: obj.Modified, Bare: true}, nil
}

// Commits lists the commits that have a release, for resolving SHA
// prefixes outside a git repository.
// It lists as List does: in concurrent ranges where that is faster.
func (x *Index) Commits(ctx context.Context) ([]string, error) {
	var ranges [16][]string
	err := x.listRanges(ctx, release.Prefix(x.app), func(r int, o Object) {
		if sha, _, ok := release.ParseKey(x.app, o.Key); ok {
			ranges[r] = append(ranges[r], sha)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list releases in %s: %w", x.s, err)
	}
	var shas []string
	for _, r := range ranges {
		shas = append(shas, r...)
	}
	return shas, nil
}

// Open reads a release's artifact. The caller closes it.
func (x *Index) Open(ctx context.Context, rel release.Release) (io.ReadCloser, error) {
	rc, _, err := x.s.Get(ctx, rel.Key)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%s: %w (%s is gone from %s)", rel.Short(), release.ErrNotPublished, rel.Key, x.s)
	}
	if err != nil {
		return nil, fmt.Errorf("open release %s: %w", rel.Short(), err)
	}
	return rc, nil
}
