package store_test

import (
	"testing"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/storetest"
)

// The logic built on Store, checked on the in-memory fake; store/dir and
// store/s3 run the same contract on real backends.
func TestMemHistoryContract(t *testing.T) {
	t.Parallel()
	storetest.RunHistory(t, func(*testing.T) store.Store { return newMem() })
}
