package dir_test

import (
	"testing"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
	"github.com/oops-deploy/oops/store/storetest"
)

func TestHistoryContract(t *testing.T) {
	storetest.RunHistory(t, func(t *testing.T) store.Store { return dir.New(t.TempDir()) })
}
