package s3_test

import (
	"testing"

	"github.com/oops-deploy/oops/store"
	s3store "github.com/oops-deploy/oops/store/s3"
	"github.com/oops-deploy/oops/store/storetest"
)

func TestHistoryContract(t *testing.T) {
	moto.Need(t)
	// awstest's server makes conditional writes atomic, as on S3.
	storetest.RunHistory(t, func(t *testing.T) store.Store {
		client, bucket := newBucket(t, moto.URL)
		return s3store.New(client, bucket, "team/oops/")
	})
}
