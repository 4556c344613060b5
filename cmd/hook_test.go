package cmd

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/target"
)

func TestShellQuoteRoundTrips(t *testing.T) {
	t.Parallel()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, v := range []string{"green", "8002", "", "it's", "a b", "$(rm -rf /)", "`x`", "http://127.0.0.1:8002/healthcheck?x=1&y=2", "line\nbreak"} {
		e := &hookEnv{Commit: v}
		var b bytes.Buffer
		if err := e.writeShell(&b); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sh, "-c", b.String()+`printf %s "$OOPS_COMMIT"`).Output()
		if err != nil {
			t.Fatalf("eval of %q failed: %v\n%s", v, err, b.String())
		}
		if string(out) != v {
			t.Errorf("eval gave %q, want %q", out, v)
		}
	}
}

func TestHookHealthURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     config.Config
		lb      string
		host    string
		want    string
		wantErr bool
	}{
		{name: "default", want: "http://127.0.0.1:8002/healthcheck"},
		{name: "from the ELB health check", lb: "HTTP:8001/status", want: "http://127.0.0.1:8002/status"},
		{name: "TCP health check", lb: "TCP:8001", want: "http://127.0.0.1:8002/healthcheck"},
		{name: "health-path", cfg: config.Config{HealthPath: "/up"}, lb: "HTTP:8001/status", want: "http://127.0.0.1:8002/up"},
		{name: "health-check-url path and query, never its host", cfg: config.Config{HealthCheckURL: "http://{ip}:{port}/health?deep=1"}, want: "http://127.0.0.1:8002/health?deep=1"},
		{name: "fixed host", cfg: config.Config{HealthCheckURL: "https://preview.example.com/ping"}, want: "http://127.0.0.1:8002/ping"},
		{name: "injected host", host: "::1", want: "http://[::1]:8002/healthcheck"},
		{name: "bad url", cfg: config.Config{HealthCheckURL: "not a url"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.cfg
			c.Path = "/app/.oopsrc"
			f := &Factory{cfg: &c}
			got, err := f.hookHealthURL(tt.host, 8002, tt.lb)
			if tt.wantErr {
				var ce *config.Error
				if !errors.As(err, &ce) || ExitCode(err) != ExitUsage {
					t.Fatalf("err = %v, want a config error (exit 2)", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("hookHealthURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

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
	if err := waitHealthy(context.Background(), &log, "green", srv.URL+"/healthcheck", 5*time.Second, 5*time.Millisecond); err != nil {
		t.Fatalf("waitHealthy: %v\n%s", err, log.String())
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
	if err := waitHealthy(context.Background(), &log, "green", srv.URL+"/healthcheck", 5*time.Second, 5*time.Millisecond); err != nil {
		t.Fatalf("waitHealthy on a 302: %v\n%s", err, log.String())
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
	err := waitHealthy(context.Background(), &bytes.Buffer{}, "blue", srv.URL+"/healthcheck", 50*time.Millisecond, 10*time.Millisecond)
	if !errors.Is(err, target.ErrUnhealthy) || ExitCode(err) != ExitUnhealthy {
		t.Fatalf("err = %v (exit %d), want unhealthy (exit %d)", err, ExitCode(err), ExitUnhealthy)
	}
	if !strings.Contains(err.Error(), "400 Bad Request") {
		t.Errorf("error %q does not say what the check answered", err)
	}
	// Nothing listening at all.
	err = waitHealthy(context.Background(), &bytes.Buffer{}, "blue", "http://127.0.0.1:1/healthcheck", 20*time.Millisecond, 5*time.Millisecond)
	if !errors.Is(err, target.ErrUnhealthy) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want unhealthy: connection refused", err)
	}
}
