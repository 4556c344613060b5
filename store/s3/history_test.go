package s3_test

import (
	"testing"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/store"
	s3store "github.com/oops-deploy/oops/store/s3"
	"github.com/oops-deploy/oops/store/storetest"
)

func TestHistoryContract(t *testing.T) {
	if motoErr != nil {
		awstest.Unavailable(t, motoErr)
	}
	// awstest's server makes conditional writes atomic, as on S3.
	storetest.RunHistory(t, func(t *testing.T) store.Store {
		client, bucket := newBucket(t, motoURL)
		return s3store.New(client, bucket, "team/oops/")
	})
}
