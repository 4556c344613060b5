package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oops-deploy/oops/internal/health"
	"github.com/oops-deploy/oops/internal/testport"
)

// server answers /healthcheck with status on 127.0.0.1 (httptest's
// default) and returns its health URL.
func server(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL + "/healthcheck"
}

// The rule every gate and hook applies: 2xx and 3xx are healthy, and the
// error names the URL and the status as the scripts match it.
func TestGetStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status  int
		healthy bool
		text    string // the status as it follows "GET <url>: "
	}{
		{200, true, ""},
		{204, true, ""},
		{301, true, ""},
		{302, true, ""},
		{399, true, ""},
		{400, false, "400 Bad Request"},
		{404, false, "404 Not Found"},
		{500, false, "500 Internal Server Error"},
		{503, false, "503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			if got := health.OK(tt.status); got != tt.healthy {
				t.Errorf("OK(%d) = %v, want %v", tt.status, got, tt.healthy)
			}
			url := server(t, func(w http.ResponseWriter, r *http.Request) {
				if r.UserAgent() != "oops-test" {
					w.WriteHeader(http.StatusTeapot)
					return
				}
				w.Header().Set("X-Oops-Color", "green")
				if tt.status >= 300 && tt.status < 400 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
			})
			res, err := health.Get(context.Background(), health.Client(10*time.Second), url, "oops-test")
			if res == nil || res.StatusCode != tt.status || res.Header.Get("X-Oops-Color") != "green" {
				t.Fatalf("Get = %+v, %v; want the %d answer with its header", res, err, tt.status)
			}
			want := ""
			if !tt.healthy {
				want = "GET " + url + ": " + tt.text
			}
			if got := errString(err); got != want {
				t.Errorf("Get error = %q, want %q", got, want)
			}
		})
	}
}

// A redirect is the answer: the target of the redirect is never asked, so
// an app whose health path redirects is healthy whatever lies behind it.
func TestGetDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			followed.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/login", http.StatusFound)
	})
	res, err := health.Get(context.Background(), health.Client(10*time.Second), url, "oops-test")
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("Get = %v, %v; want the 302 itself, healthy", res, err)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect was followed %d time(s)", n)
	}
}

// No answer in time names the probe's timeout, not net/http's internals;
// a caller that gives up is not reported as the app's slowness.
func TestGetNoAnswer(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // before the server's Close: LIFO

	_, err := health.Get(context.Background(), health.Client(50*time.Millisecond), url, "oops-test")
	if want := "GET " + url + ": no answer within 50ms"; errString(err) != want {
		t.Errorf("client timeout: error %q, want %q", errString(err), want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = health.Get(ctx, health.Client(time.Minute), url, "oops-test")
	if want := "GET " + url + ": context canceled"; errString(err) != want || !errors.Is(err, context.Canceled) {
		t.Errorf("caller gave up: error %q, want %q", errString(err), want)
	}
}

// Nothing listening: the cause once, without net/http's repetition of the
// URL and the address ("dial tcp 127.0.0.1:port:").
func TestGetRefused(t *testing.T) {
	t.Parallel()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthcheck", testport.Get(t))
	res, err := health.Get(context.Background(), health.Client(10*time.Second), url, "oops-test")
	if res != nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Get = %v, %v; want connection refused", res, err)
	}
	if want := "GET " + url + ": connect: connection refused"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// Wait asks until healthy and says each new reason once: the hook's log
// shows "not yet: ... 503" once for several 503s, then the next reason.
func TestWait(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1, 2, 3:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 4:
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusMovedPermanently)
		}
	})
	var said []string
	err := health.Wait(context.Background(), health.Client(10*time.Second), url, "oops-test", time.Hour, time.Millisecond,
		func(err error) { said = append(said, err.Error()) })
	if err != nil {
		t.Fatalf("Wait = %v, want healthy on the 301", err)
	}
	want := []string{"GET " + url + ": 503 Service Unavailable", "GET " + url + ": 502 Bad Gateway"}
	if strings.Join(said, "\n") != strings.Join(want, "\n") {
		t.Errorf("not yet said %q, want %q", said, want)
	}
}

// The verdicts that are not "healthy": the last answer when time is up,
// ctx.Err() itself when the caller gave up.
func TestWaitGivesUp(t *testing.T) {
	t.Parallel()
	url := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	hc := health.Client(10 * time.Second)

	err := health.Wait(context.Background(), hc, url, "oops-test", 0, time.Millisecond, nil)
	if want := "GET " + url + ": 400 Bad Request"; errString(err) != want {
		t.Errorf("time up: Wait = %q, want %q", errString(err), want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := health.Wait(ctx, hc, url, "oops-test", time.Hour, time.Millisecond, nil); err != context.Canceled {
		t.Errorf("cancelled: Wait = %v, want context.Canceled itself", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
