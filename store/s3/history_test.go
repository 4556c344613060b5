package s3_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
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
	endpoint := atomicS3(t, motoURL)
	storetest.RunHistory(t, func(t *testing.T) store.Store {
		client, bucket := newBucket(t, endpoint)
		return s3store.New(client, bucket, "team/oops/")
	})
}

// atomicS3 fronts moto with a proxy that runs conditional writes one at a
// time. moto checks If-Match / If-None-Match and then writes, without a
// lock, so two racing writers can both pass the check; S3 itself never
// allows that, and the lock tests race writers on purpose.
func atomicS3(t *testing.T, upstream string) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "" {
			mu.Lock()
			defer mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
