package s3_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oops-deploy/oops/internal/awstest"
	s3store "github.com/oops-deploy/oops/store/s3"
)

// TestLeftoverUploads: an unfinished multipart upload (a publish killed
// half-way) is a leftover once old enough, and removing it aborts it.
// Uploads outside the store's prefix are someone else's.
func TestLeftoverUploads(t *testing.T) {
	client, bucket := newBucket(t, moto.URL)
	ctx := awstest.Ctx(t)
	s := s3store.New(client, bucket, "team/oops/")
	for _, key := range []string{"team/oops/app/app-1.zip", "other/big.iso"} {
		if _, err := client.CreateMultipartUpload(ctx, &sdk.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.Leftovers(ctx, time.Now().Add(time.Hour))
	if err != nil || len(ls) != 1 {
		t.Fatalf("Leftovers = %+v, %v; want the one upload under the prefix", ls, err)
	}
	// moto reports a fixed start time: the cut-off is checked against it.
	started := ls[0].Modified
	if young, err := s.Leftovers(ctx, started); err != nil || len(young) != 0 {
		t.Fatalf("Leftovers(started) = %v, %v; want none: the upload may still be running", young, err)
	}
	if ls, err = s.Leftovers(ctx, started.Add(time.Second)); err != nil || len(ls) != 1 {
		t.Fatalf("Leftovers(after start) = %+v, %v; want the upload", ls, err)
	}
	if err := s.RemoveLeftover(ctx, ls[0]); err != nil {
		t.Fatal(err)
	}
	if ls, err := s.Leftovers(ctx, time.Now().Add(time.Hour)); err != nil || len(ls) != 0 {
		t.Errorf("after RemoveLeftover: %+v, %v; want the upload aborted", ls, err)
	}
}
