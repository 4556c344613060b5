package s3

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// regional is the S3 client with the bucket's own region. A bucket in
// another region than the one configured answers with a redirect (301, or
// 400 for a signature scoped to the wrong region) that names its region
// in x-amz-bucket-region; the first such answer sets the region, the call
// is made again, and every later call uses it: one lookup, no extra
// request when the region was right.
type regional struct {
	api    API
	region atomic.Pointer[string]
}

var _ API = (*regional)(nil)

// opt applies the learned region to one call.
func (r *regional) opt(o *s3.Options) {
	if p := r.region.Load(); p != nil {
		o.Region = *p
	}
}

// bucketRegion is the region a wrong-region answer names, or "".
func bucketRegion(err error) string {
	var re *awshttp.ResponseError
	if err == nil || !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	switch re.HTTPStatusCode() {
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusBadRequest:
		return re.Response.Header.Get("X-Amz-Bucket-Region")
	}
	return ""
}

// do makes call with the learned region; when the answer names another
// region, it learns it and makes the call again (rewinding body, which
// must then be seekable).
func do[T any](r *regional, body io.Reader, call func(opt func(*s3.Options)) (T, error)) (T, error) {
	out, err := call(r.opt)
	reg := bucketRegion(err)
	if reg == "" {
		return out, err
	}
	if p := r.region.Load(); p != nil && *p == reg {
		return out, err // already used: not a region problem
	}
	r.region.Store(&reg)
	if body != nil {
		sk, ok := body.(io.Seeker)
		if !ok {
			return out, err
		}
		if _, serr := sk.Seek(0, io.SeekStart); serr != nil {
			return out, err
		}
	}
	return call(r.opt)
}

func (r *regional) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return do(r, in.Body, func(opt func(*s3.Options)) (*s3.PutObjectOutput, error) {
		return r.api.PutObject(ctx, in, append(o, opt)...)
	})
}

func (r *regional) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return do(r, nil, func(opt func(*s3.Options)) (*s3.GetObjectOutput, error) {
		return r.api.GetObject(ctx, in, append(o, opt)...)
	})
}

func (r *regional) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return do(r, nil, func(opt func(*s3.Options)) (*s3.HeadObjectOutput, error) {
		return r.api.HeadObject(ctx, in, append(o, opt)...)
	})
}

func (r *regional) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, o ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return do(r, nil, func(opt func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
		return r.api.ListObjectsV2(ctx, in, append(o, opt)...)
	})
}

func (r *regional) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, o ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return do(r, nil, func(opt func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
		return r.api.DeleteObject(ctx, in, append(o, opt)...)
	})
}

func (r *regional) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, o ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return do(r, nil, func(opt func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
		return r.api.CreateMultipartUpload(ctx, in, append(o, opt)...)
	})
}

func (r *regional) UploadPart(ctx context.Context, in *s3.UploadPartInput, o ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return do(r, in.Body, func(opt func(*s3.Options)) (*s3.UploadPartOutput, error) {
		return r.api.UploadPart(ctx, in, append(o, opt)...)
	})
}

func (r *regional) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, o ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return do(r, nil, func(opt func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
		return r.api.CompleteMultipartUpload(ctx, in, append(o, opt)...)
	})
}

func (r *regional) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, o ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return do(r, nil, func(opt func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
		return r.api.AbortMultipartUpload(ctx, in, append(o, opt)...)
	})
}

// listMultipartUploads calls ListMultipartUploads when the client has it
// (see uploadLister); false when it does not.
func (r *regional) listMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput) (*s3.ListMultipartUploadsOutput, bool, error) {
	l, ok := r.api.(uploadLister)
	if !ok {
		return nil, false, nil
	}
	out, err := do(r, nil, func(opt func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
		return l.ListMultipartUploads(ctx, in, opt)
	})
	return out, true, err
}
