// Package s3 is a store.Store on an S3 bucket, optionally under a key
// prefix. Artifacts keep the original tool's keys, so CodeDeploy and
// existing buckets work unchanged.
//
// Conditional writes make it safe for concurrent publishers: Create sends
// If-None-Match: * (on PutObject, and on CompleteMultipartUpload for large
// bodies), Replace and Delete send If-Match with the ETag they read.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/store"
)

// API is the part of the S3 SDK the store uses.
type API interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var _ API = (*s3.Client)(nil)

// Defaults for large bodies.
const (
	DefaultPartSize    = 16 << 20
	DefaultConcurrency = 4
	minPartSize        = 5 << 20 // S3 refuses smaller parts (except the last)
	maxParts           = 10000
	maxPageSize        = 1000 // S3 returns at most 1000 keys per listing
)

// Store keeps objects in one bucket under an optional prefix.
type Store struct {
	api    *regional
	bucket string
	prefix string // "" or ends with "/"

	// PartSize is both the size above which bodies are uploaded in parts
	// and the size of each part.
	PartSize int64
	// Concurrency is how many parts are in flight at once.
	Concurrency int
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.RangeLister = (*Store)(nil)
)

// New returns a store on bucket; keys are stored under prefix (may be "").
func New(client API, bucket, prefix string) *Store {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{api: &regional{api: client}, bucket: bucket, prefix: prefix, PartSize: DefaultPartSize, Concurrency: DefaultConcurrency}
}

// NewClient builds an S3 client from an SDK config. A custom endpoint
// (AWS_ENDPOINT_URL, moto, MinIO) gets path-style addressing, since
// bucket-name host names do not resolve there.
func NewClient(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if cfg.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
		// Objects uploaded by other tools carry no checksum; the SDK
		// would say so on stderr for every one oops reads.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// Bucket is the bucket the store writes to.
func (s *Store) Bucket() string { return s.bucket }

// FullKey is the S3 object key of a store key (with the prefix), as
// CodeDeploy needs it.
func (s *Store) FullKey(key string) string { return s.prefix + key }

// String names the store for messages.
func (s *Store) String() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *Store) url(key string) string { return "s3://" + s.bucket + "/" + s.FullKey(key) }

// classify maps the S3 errors callers branch on to store errors.
func classify(err error) error {
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchKey" || code == "NotFound" || (status == 404 && code != "NoSuchBucket" && code != "NoSuchUpload"):
		return store.ErrNotFound
	case code == "PreconditionFailed" || status == 412:
		return store.ErrPrecondition
	case code == "ConditionalRequestConflict":
		// Another conditional write to the key is in flight; AWS says to
		// retry, and a retry answers with one of the cases above.
		return errConflict
	}
	return err
}

var errConflict = errors.New("conditional request conflict")

// retryConflict repeats a conditional write that S3 answered with 409.
func retryConflict(ctx context.Context, fn func() error) error {
	var err error
	for attempt := range 5 {
		if err = fn(); !errors.Is(classify(err), errConflict) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		}
	}
	return err
}

// Create writes a new object: store.ErrExists if the key is taken, even
// when another writer gets there first during the upload.
func (s *Store) Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Object{}, err
	}
	if err := store.CheckMeta(meta); err != nil {
		return store.Object{}, fmt.Errorf("create %s: %w", s.url(key), err)
	}
	partSize := max(s.PartSize, minPartSize)
	if size > partSize*maxParts {
		partSize = (size + maxParts - 1) / maxParts
	}
	// Where the body starts, to upload it again after a 409 on completion.
	start, seekErr := int64(0), errors.New("not seekable")
	if sk, ok := body.(io.Seeker); ok {
		start, seekErr = sk.Seek(0, io.SeekCurrent)
	}
	for attempt := 1; ; attempt++ {
		// Read the first part: a body that fits is one PutObject.
		first, err := readPart(body, partSize)
		if err != nil {
			return store.Object{}, fmt.Errorf("create %s: read: %w", s.url(key), err)
		}
		if int64(len(first)) < partSize || size == partSize {
			if size >= 0 && int64(len(first)) != size {
				return store.Object{}, fmt.Errorf("create %s: read %d bytes, expected %d", s.url(key), len(first), size)
			}
			return s.put(ctx, key, first, meta)
		}
		obj, err := s.multipart(ctx, key, first, body, size, partSize, meta)
		if !errors.Is(err, errRestart) {
			return obj, err
		}
		if seekErr != nil || attempt == maxRestarts {
			why := fmt.Sprintf("it did %d times", attempt)
			if seekErr != nil {
				why = "the body cannot be read again"
			}
			return store.Object{}, fmt.Errorf("create %s: S3 answered 409 (another conditional write to the key was in flight) when completing the upload, which then has to start again, and %s: run the command again", s.url(key), why)
		}
		if _, err := body.(io.Seeker).Seek(start, io.SeekStart); err != nil {
			return store.Object{}, fmt.Errorf("create %s: rewind for a new upload: %w", s.url(key), err)
		}
	}
}

// maxRestarts bounds the uploads of one Create after 409s on completion.
const maxRestarts = 3

// errRestart: CompleteMultipartUpload answered 409 ConditionalRequestConflict.
// That upload cannot be completed any more: S3 says to upload again.
var errRestart = errors.New("multipart upload must be restarted")

// readPart reads up to n bytes; fewer only at the end of body.
func readPart(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n)
	m, err := io.ReadFull(r, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:m], err
}

func (s *Store) put(ctx context.Context, key string, body []byte, meta map[string]string) (store.Object, error) {
	var out *s3.PutObjectOutput
	err := retryConflict(ctx, func() error {
		var err error
		out, err = s.api.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           aws.String(s.FullKey(key)),
			Body:          bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))),
			Metadata:      meta,
			IfNoneMatch:   aws.String("*"),
		})
		return err
	})
	if err != nil {
		if errors.Is(classify(err), store.ErrPrecondition) {
			return store.Object{}, fmt.Errorf("create %s: %w", s.url(key), store.ErrExists)
		}
		return store.Object{}, fmt.Errorf("create %s: %w", s.url(key), err)
	}
	return store.Object{Key: key, Size: int64(len(body)), ETag: aws.ToString(out.ETag), Modified: time.Now().UTC(), Meta: meta}, nil
}

// multipart uploads a large body in concurrent parts. Parts are read
// sequentially and uploaded by Concurrency workers, so memory stays at
// about (Concurrency+1) parts. The upload becomes visible only at
// CompleteMultipartUpload, which carries If-None-Match: * so a concurrent
// publisher who completed first wins and this one gets ErrExists.
func (s *Store) multipart(ctx context.Context, key string, first []byte, body io.Reader, size, partSize int64, meta map[string]string) (store.Object, error) {
	fail := func(err error) (store.Object, error) {
		return store.Object{}, fmt.Errorf("create %s: %w", s.url(key), err)
	}
	// Do not upload gigabytes only to be refused at the end.
	if _, err := s.Stat(ctx, key); err == nil {
		return fail(store.ErrExists)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Object{}, err
	}
	cmu, err := s.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: aws.String(s.FullKey(key)), Metadata: meta,
	})
	if err != nil {
		return fail(err)
	}
	uploadID := cmu.UploadId
	abort := func() {
		// The caller's context may be what failed; still clean up.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = s.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: aws.String(s.FullKey(key)), UploadId: uploadID})
	}

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type part struct {
		n    int32
		data []byte
	}
	var (
		mu       sync.Mutex
		done     []types.CompletedPart
		firstErr error
		wg       sync.WaitGroup
		total    int64
	)
	setErr := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	parts := make(chan part)
	for range max(1, s.Concurrency) {
		wg.Go(func() {
			for p := range parts {
				out, err := s.api.UploadPart(pctx, &s3.UploadPartInput{
					Bucket: &s.bucket, Key: aws.String(s.FullKey(key)), UploadId: uploadID,
					PartNumber: aws.Int32(p.n), Body: bytes.NewReader(p.data), ContentLength: aws.Int64(int64(len(p.data))),
				})
				if err != nil {
					setErr(fmt.Errorf("upload part %d: %w", p.n, err))
					continue
				}
				mu.Lock()
				done = append(done, types.CompletedPart{PartNumber: aws.Int32(p.n), ETag: out.ETag})
				mu.Unlock()
			}
		})
	}
	next := first
	for n := int32(1); len(next) > 0; n++ {
		if n > maxParts {
			setErr(fmt.Errorf("body is larger than %d parts of %d bytes", maxParts, partSize))
			break
		}
		total += int64(len(next))
		select {
		case parts <- part{n, next}:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
		if int64(len(next)) < partSize {
			break // short part: that was the end
		}
		if next, err = readPart(body, partSize); err != nil {
			setErr(fmt.Errorf("read: %w", err))
			break
		}
	}
	close(parts)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr == nil && size >= 0 && total != size {
		firstErr = fmt.Errorf("read %d bytes, expected %d", total, size)
	}
	if firstErr != nil {
		abort()
		return fail(firstErr)
	}
	sort.Slice(done, func(i, j int) bool { return *done[i].PartNumber < *done[j].PartNumber })
	// Not retried on 409, unlike a PutObject: the upload is restarted.
	out, err := s.api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: aws.String(s.FullKey(key)), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		IfNoneMatch:     aws.String("*"),
	})
	if err != nil {
		abort()
		switch c := classify(err); {
		case errors.Is(c, store.ErrPrecondition):
			return fail(store.ErrExists)
		case errors.Is(c, errConflict):
			return store.Object{}, errRestart
		}
		return fail(err)
	}
	return store.Object{Key: key, Size: total, ETag: aws.ToString(out.ETag), Modified: time.Now().UTC(), Meta: meta}, nil
}

// Replace overwrites key if its ETag is still etag.
func (s *Store) Replace(ctx context.Context, key string, body []byte, etag string) (store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Object{}, err
	}
	if etag == "" {
		return store.Object{}, fmt.Errorf("replace %s: an etag is required (use Create for new objects)", s.url(key))
	}
	var out *s3.PutObjectOutput
	err := retryConflict(ctx, func() error {
		var err error
		out, err = s.api.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           aws.String(s.FullKey(key)),
			Body:          bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))),
			IfMatch:       aws.String(etag),
		})
		return err
	})
	if err != nil {
		if c := classify(err); errors.Is(c, store.ErrPrecondition) || errors.Is(c, store.ErrNotFound) {
			err = c
		}
		return store.Object{}, fmt.Errorf("replace %s: %w", s.url(key), err)
	}
	return store.Object{Key: key, Size: int64(len(body)), ETag: aws.ToString(out.ETag), Modified: time.Now().UTC()}, nil
}

// Get opens an object.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, store.Object{}, err
	}
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.FullKey(key))})
	if err != nil {
		if c := classify(err); errors.Is(c, store.ErrNotFound) {
			err = c
		}
		return nil, store.Object{}, fmt.Errorf("get %s: %w", s.url(key), err)
	}
	return out.Body, store.Object{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
		Modified: aws.ToTime(out.LastModified).UTC(), Meta: out.Metadata,
	}, nil
}

// Stat describes an object.
func (s *Store) Stat(ctx context.Context, key string) (store.Object, error) {
	if err := store.CheckKey(key); err != nil {
		return store.Object{}, err
	}
	out, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.FullKey(key))})
	if err != nil {
		if c := classify(err); errors.Is(c, store.ErrNotFound) {
			err = c
		}
		return store.Object{}, fmt.Errorf("stat %s: %w", s.url(key), err)
	}
	return store.Object{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
		Modified: aws.ToTime(out.LastModified).UTC(), Meta: out.Metadata,
	}, nil
}

// ListsInRanges: every page of a listing is a round trip that waits for
// the one before it, so concurrent listings of sub-ranges are faster.
func (s *Store) ListsInRanges() bool { return true }

// List pages through ListObjectsV2. With a limit, a page asks for no more
// keys than still wanted, so a short listing is one request.
func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions, fn func(store.Object) error) error {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix)}
	if opts.StartAfter != "" {
		in.StartAfter = aws.String(s.FullKey(opts.StartAfter))
	}
	seen := 0
	for {
		page := maxPageSize
		if opts.Limit > 0 {
			page = min(page, opts.Limit-seen)
		}
		in.MaxKeys = aws.Int32(int32(page))
		out, err := s.api.ListObjectsV2(ctx, in, leanListing)
		if err != nil {
			return fmt.Errorf("list %s: %w", s.url(prefix), err)
		}
		objs, lean := leanObjects(out)
		if !lean {
			objs = make([]store.Object, len(out.Contents))
			for i, o := range out.Contents {
				objs[i] = store.Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag), Modified: aws.ToTime(o.LastModified).UTC()}
			}
		}
		for _, o := range objs {
			o.Key = strings.TrimPrefix(o.Key, s.prefix)
			err := fn(o)
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			if err != nil {
				return err
			}
			seen++
			if opts.Limit > 0 && seen >= opts.Limit {
				return nil
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// Delete removes key; with an etag, only that version. A missing key is
// not an error.
func (s *Store) Delete(ctx context.Context, key string, etag string) error {
	if err := store.CheckKey(key); err != nil {
		return err
	}
	in := &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.FullKey(key))}
	if etag != "" {
		in.IfMatch = aws.String(etag)
	}
	err := retryConflict(ctx, func() error {
		_, err := s.api.DeleteObject(ctx, in)
		return err
	})
	if err != nil {
		switch c := classify(err); {
		case errors.Is(c, store.ErrNotFound):
			return nil
		case errors.Is(c, store.ErrPrecondition):
			err = c
		}
		return fmt.Errorf("delete %s: %w", s.url(key), err)
	}
	return nil
}
