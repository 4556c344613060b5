package workflow

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/testport"
	"github.com/oops-deploy/oops/target"
)

func TestWaitHealthy(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	// Healthy from the third check on, like a service that takes a moment to start.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var log bytes.Buffer
	if err := WaitHealthy(context.Background(), writerReporter{&log}, "green", srv.URL+"/healthcheck", 5*time.Second, 5*time.Millisecond); err != nil {
		t.Fatalf("WaitHealthy: %v\n%s", err, log.String())
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d checks, want 3", n)
	}
	if got := log.String(); strings.Count(got, "503 Service Unavailable") != 1 || !strings.Contains(got, "green is healthy") {
		t.Errorf("log should say the 503 once and then healthy:\n%s", got)
	}
}

// A redirect is an answer, healthy as the gate before a switch judges it
// (health.OK); where it leads is never asked.
func TestWaitHealthyTakesARedirect(t *testing.T) {
	t.Parallel()
	var login atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			login.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/login", http.StatusFound)
	}))
	defer srv.Close()
	var log bytes.Buffer
	if err := WaitHealthy(context.Background(), writerReporter{&log}, "green", srv.URL+"/healthcheck", 5*time.Second, 5*time.Millisecond); err != nil {
		t.Fatalf("WaitHealthy on a 302: %v\n%s", err, log.String())
	}
	if n := login.Load(); n != 0 || !strings.Contains(log.String(), "green is healthy") {
		t.Errorf("redirect followed %d time(s); log:\n%s", n, log.String())
	}
}

func TestWaitHealthyGivesUp(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // 4xx: not healthy
	}))
	defer srv.Close()
	err := WaitHealthy(context.Background(), writerReporter{&bytes.Buffer{}}, "blue", srv.URL+"/healthcheck", 50*time.Millisecond, 10*time.Millisecond)
	if !errors.Is(err, target.ErrUnhealthy) {
		t.Fatalf("err = %v, want unhealthy", err)
	}
	if !strings.Contains(err.Error(), "400 Bad Request") {
		t.Errorf("error %q does not say what the check answered", err)
	}
	// Nothing listening at all: a port reserved for this test (not a fixed
	// one that something on the machine may listen on).
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(testport.Get(t)))
	err = WaitHealthy(context.Background(), writerReporter{&bytes.Buffer{}}, "blue", "http://"+dead+"/healthcheck", 20*time.Millisecond, 5*time.Millisecond)
	if !errors.Is(err, target.ErrUnhealthy) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want unhealthy: connection refused", err)
	}
}
