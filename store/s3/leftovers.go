package s3

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/oops-deploy/oops/store"
)

// uploadLister is the SDK call that lists unfinished multipart uploads.
// It is not part of API, so fakes of API need not implement it; a store
// whose client lacks it reports no leftovers.
type uploadLister interface {
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
}

var _ store.LeftoverCleaner = (*Store)(nil)

// Leftovers lists multipart uploads under the store's prefix started
// before olderThan and never completed or aborted (a publish that was
// killed): S3 keeps, and bills, their parts until they are aborted.
func (s *Store) Leftovers(ctx context.Context, olderThan time.Time) ([]store.Leftover, error) {
	var out []store.Leftover
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket}
	if s.prefix != "" {
		in.Prefix = aws.String(s.prefix)
	}
	for {
		page, ok, err := s.api.listMultipartUploads(ctx, in)
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list unfinished uploads in %s: %w", s, err)
		}
		for _, u := range page.Uploads {
			started := aws.ToTime(u.Initiated)
			if !started.Before(olderThan) {
				continue
			}
			key := aws.ToString(u.Key)
			out = append(out, store.Leftover{
				Name:     fmt.Sprintf("s3://%s/%s (upload %s)", s.bucket, key, aws.ToString(u.UploadId)),
				What:     "unfinished multipart upload of an interrupted publish",
				Modified: started,
				ID:       key + "\x00" + aws.ToString(u.UploadId),
			})
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// RemoveLeftover aborts an unfinished multipart upload; its parts go.
func (s *Store) RemoveLeftover(ctx context.Context, l store.Leftover) error {
	key, id, ok := strings.Cut(l.ID, "\x00")
	if !ok {
		return fmt.Errorf("abort upload %q: not an upload of %s", l.Name, s)
	}
	_, err := s.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: aws.String(key), UploadId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("abort upload %s: %w", l.Name, err)
	}
	return nil
}
