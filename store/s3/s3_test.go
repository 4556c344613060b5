package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/store"
	s3store "github.com/oops-deploy/oops/store/s3"
	"github.com/oops-deploy/oops/store/storetest"
)

// moto is shared by the package's tests; each test uses its own bucket.
var moto awstest.Shared

func TestMain(m *testing.M) { os.Exit(moto.Main(m)) }

var bucketSeq atomic.Int64

// newBucket creates a fresh bucket on moto (or on a proxy in front of it).
func newBucket(t *testing.T, endpoint string) (*sdk.Client, string) {
	t.Helper()
	moto.Need(t)
	client := s3store.NewClient(awstest.Config(endpoint))
	name := fmt.Sprintf("oops-test-%d-%d", os.Getpid(), bucketSeq.Add(1))
	if _, err := client.CreateBucket(context.Background(), &sdk.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return client, name
}

// faultBucket is a fresh bucket reached through a fault proxy, and a store
// on it under prefix.
func faultBucket(t *testing.T, prefix string) (*faultproxy.Proxy, *sdk.Client, string, *s3store.Store) {
	t.Helper()
	moto.Need(t)
	p := faultproxy.NewT(t, moto.URL)
	client, bucket := newBucket(t, p.URL)
	return p, client, bucket, s3store.New(client, bucket, prefix)
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		client, bucket := newBucket(t, moto.URL)
		return s3store.New(client, bucket, "team/oops/")
	})
}

func TestKeys(t *testing.T) {
	client, bucket := newBucket(t, moto.URL)
	s := s3store.New(client, bucket, "/team/oops/")
	if got := s.FullKey("app/app-1.zip"); got != "team/oops/app/app-1.zip" {
		t.Errorf("FullKey = %q", got)
	}
	if s.Bucket() != bucket || s.String() != "s3://"+bucket+"/team/oops/" {
		t.Errorf("Bucket %q String %q", s.Bucket(), s.String())
	}
	ctx := awstest.Ctx(t)
	if _, err := s.Create(ctx, "app/app-1.zip", strings.NewReader("x"), 1, nil); err != nil {
		t.Fatal(err)
	}
	// The object is where CodeDeploy will be told to look.
	if _, err := client.HeadObject(ctx, &sdk.HeadObjectInput{Bucket: &bucket, Key: aws.String(s.FullKey("app/app-1.zip"))}); err != nil {
		t.Errorf("object not at FullKey: %v", err)
	}
	bare := s3store.New(client, bucket, "")
	if got := bare.FullKey("app/x"); got != "app/x" {
		t.Errorf("FullKey without prefix = %q", got)
	}
}

// TestShortListIsOneRequest: a limited listing asks S3 for just that many
// keys.
func TestShortListIsOneRequest(t *testing.T) {
	p, _, _, s := faultBucket(t, "")
	ctx := awstest.Ctx(t)
	for i := range 5 {
		if _, err := s.Create(ctx, fmt.Sprintf("k%d", i), strings.NewReader("x"), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	p.Clear()
	n := 0
	if err := s.List(ctx, "", store.ListOptions{Limit: 2}, func(store.Object) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 || p.Count("") != 1 {
		t.Errorf("List(limit 2) gave %d objects in %d requests (%v), want 2 in 1", n, p.Count(""), p.Calls())
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMultipart: a body larger than a part goes up in concurrent parts and
// reads back whole, with its metadata.
func TestMultipart(t *testing.T) {
	p, _, _, s := faultBucket(t, "pre")
	s.PartSize = 5 << 20
	body := randomBytes(t, 11<<20+123)
	ctx := awstest.Ctx(t)
	p.Clear()
	// Unknown size exercises the streaming path.
	obj, err := s.Create(ctx, "app/app-big.zip", io.MultiReader(bytes.NewReader(body)), -1, map[string]string{"sha256": "abc"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if obj.Size != int64(len(body)) {
		t.Errorf("Create size = %d, want %d", obj.Size, len(body))
	}
	if got := p.Count("PUT"); got != 3 {
		t.Errorf("%d PUTs (parts), want 3 parts of at most 5 MiB: %v", got, p.Calls())
	}
	rc, o, err := s.Get(ctx, "app/app-big.zip")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) || o.Meta["sha256"] != "abc" {
		t.Errorf("read back %d bytes (equal: %v), meta %v", len(got), bytes.Equal(got, body), o.Meta)
	}
	// A second large Create is refused before uploading anything.
	p.Clear()
	_, err = s.Create(ctx, "app/app-big.zip", bytes.NewReader(body), int64(len(body)), nil)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	if p.Count("PUT") != 0 {
		t.Errorf("refused Create still uploaded %d parts", p.Count("PUT"))
	}
}

// gate holds CompleteMultipartUpload until released, to order two
// uploads deterministically.
type gate struct {
	s3store.API
	arrived, wait chan struct{}
}

func (g gate) CompleteMultipartUpload(ctx context.Context, in *sdk.CompleteMultipartUploadInput, opts ...func(*sdk.Options)) (*sdk.CompleteMultipartUploadOutput, error) {
	close(g.arrived)
	<-g.wait
	return g.API.CompleteMultipartUpload(ctx, in, opts...)
}

// TestMultipartRace: two publishers of the same key both pass the
// existence check and upload their parts; the one who completes second is
// refused by If-None-Match on CompleteMultipartUpload (S3 and moto honour
// it), so the first one's bytes stay.
func TestMultipartRace(t *testing.T) {
	client, bucket := newBucket(t, moto.URL)
	ctx := awstest.Ctx(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := s3store.New(gate{client, arrived, release}, bucket, "")
	fast := s3store.New(client, bucket, "")
	slow.PartSize, fast.PartSize = 5<<20, 5<<20
	a, b := randomBytes(t, 6<<20), randomBytes(t, 6<<20)

	var wg sync.WaitGroup
	var slowErr error
	wg.Go(func() { _, slowErr = slow.Create(ctx, "race.zip", bytes.NewReader(a), int64(len(a)), nil) })
	// The slow upload has passed its existence check and uploaded its
	// parts; the fast one now publishes, then the slow one completes.
	<-arrived
	if _, err := fast.Create(ctx, "race.zip", bytes.NewReader(b), int64(len(b)), nil); err != nil {
		close(release)
		wg.Wait()
		t.Fatalf("fast Create: %v", err)
	}
	close(release)
	wg.Wait()
	if !errors.Is(slowErr, store.ErrExists) {
		t.Fatalf("second multipart completion: err = %v, want ErrExists", slowErr)
	}
	rc, _, err := fast.Get(ctx, "race.zip")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, b) {
		t.Errorf("stored bytes are not the first completed upload's")
	}
}

// TestMultipartFailureAborts: a failed part aborts the upload, so S3 keeps
// no half-upload (which it would bill for) and the key stays free.
func TestMultipartFailureAborts(t *testing.T) {
	p, client, bucket, s := faultBucket(t, "")
	s.PartSize = 5 << 20
	ctx := awstest.Ctx(t)
	body := randomBytes(t, 11<<20)
	p.Clear()
	p.Add(faultproxy.Rule{Action: "PUT", Skip: 1, Times: 1, Status: 500, Body: "<Error><Code>InternalError</Code><Message>boom</Message></Error>"})
	if _, err := s.Create(ctx, "fail.zip", bytes.NewReader(body), int64(len(body)), nil); err == nil {
		t.Fatal("Create succeeded despite a failed part")
	}
	if p.Count("DELETE") != 1 {
		t.Errorf("calls %v: want one DELETE (AbortMultipartUpload)", p.Calls())
	}
	uploads, err := client.ListMultipartUploads(ctx, &sdk.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind", len(uploads.Uploads))
	}
	p.Clear()
	if _, err := s.Create(ctx, "fail.zip", bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Errorf("retry after failure: %v", err)
	}
}

// conflictXML is S3's answer to a conditional write that raced another.
const conflictXML = "<Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation is currently in progress against this resource. Please try again.</Message></Error>"

// TestMultipartCompleteConflictRestarts: S3 answers a conditional
// CompleteMultipartUpload with 409 when another conditional write to the
// key is in flight, and that upload then cannot be completed: the upload
// is started again (a new upload id), not the completion retried. A body
// that cannot be read again fails with what to do.
func TestMultipartCompleteConflictRestarts(t *testing.T) {
	p, client, bucket, s := faultBucket(t, "")
	s.PartSize = 5 << 20
	ctx := awstest.Ctx(t)
	body := randomBytes(t, 6<<20)
	p.Clear()
	// POSTs: CreateMultipartUpload, then CompleteMultipartUpload (409).
	p.Add(faultproxy.Rule{Action: "POST", Skip: 1, Times: 1, Status: 409, Body: conflictXML})
	if _, err := s.Create(ctx, "conflict.zip", bytes.NewReader(body), int64(len(body)), nil); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got, aborts := p.Count("POST"), p.Count("DELETE"); got != 4 || aborts != 1 {
		t.Errorf("calls %v: want the first upload aborted and a new one created and completed (4 POSTs, 1 DELETE)", p.Calls())
	}
	rc, _, err := s.Get(ctx, "conflict.zip")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Error("stored bytes differ from the body")
	}

	p.Clear()
	p.Add(faultproxy.Rule{Action: "POST", Skip: 1, Times: 1, Status: 409, Body: conflictXML})
	_, err = s.Create(ctx, "stream.zip", io.MultiReader(bytes.NewReader(body)), -1, nil)
	if err == nil || !strings.Contains(err.Error(), "run the command again") {
		t.Errorf("Create of a stream after a 409 = %v, want an error saying to run it again", err)
	}
	uploads, err := client.ListMultipartUploads(ctx, &sdk.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind", len(uploads.Uploads))
	}
}

// TestBucketInAnotherRegion: S3 answers a request signed for the wrong
// region with a redirect carrying x-amz-bucket-region (simulated: moto has
// no regions). The store takes the bucket's region from the first such
// answer and uses it from then on, instead of failing with the raw
// redirect.
func TestBucketInAnotherRegion(t *testing.T) {
	p, _, _, s := faultBucket(t, "")
	ctx := awstest.Ctx(t)
	redirects := make(chan string, 100)
	p.Clear()
	// The bucket's region: every call still signed for the old one is
	// redirected (one rule for all operations: only the first should meet it).
	p.Add(faultproxy.Rule{Action: "*", Match: faultproxy.SignedFor(awstest.Region), Status: 301, Hit: redirects,
		Header: http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}},
		Body:   "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>"})
	if _, err := s.Create(ctx, "app/app-1.zip", strings.NewReader("one"), 3, nil); err != nil {
		t.Fatalf("Create: %v", err)
	}
	n := 0
	if err := s.List(ctx, "app/", store.ListOptions{}, func(store.Object) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("List = %d objects, %v", n, err)
	}
	rc, _, err := s.Get(ctx, "app/app-1.zip")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if got := len(redirects); got != 1 {
		t.Errorf("%d redirects, want 1: the region is looked up once and used", got)
	}
}

// TestBucketInAnotherRegionHeadFirst: a HEAD answered 301 has no body
// (only x-amz-bucket-region): when the first call is a Stat, the region
// is learned from it all the same.
func TestBucketInAnotherRegionHeadFirst(t *testing.T) {
	p, client, bucket, s := faultBucket(t, "")
	ctx := awstest.Ctx(t)
	if _, err := s.Create(ctx, "a.zip", strings.NewReader("one"), 3, nil); err != nil {
		t.Fatal(err)
	}
	s = s3store.New(client, bucket, "") // a new store: nothing learned yet
	redirects := make(chan string, 100)
	p.Clear()
	p.Add(faultproxy.Rule{Action: "*", Match: faultproxy.SignedFor(awstest.Region), Status: 301, Hit: redirects,
		Header: http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}})
	if o, err := s.Stat(ctx, "a.zip"); err != nil || o.Size != 3 {
		t.Fatalf("Stat = %+v, %v", o, err)
	}
	if got := len(redirects); got != 1 {
		t.Errorf("%d redirects, want 1", got)
	}
}
