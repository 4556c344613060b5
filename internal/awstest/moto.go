// Package awstest starts moto_server (an AWS emulator) for tests and builds
// real aws-sdk-go-v2 configs pointing at it. Tests that need it skip when it
// is not installed, except under CI, where they fail.
package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region used for every test config.
const Region = "us-east-1"

// Moto is a running moto_server on a loopback port.
type Moto struct {
	URL string
	cmd *exec.Cmd
}

// ErrMissing explains why moto tests cannot run.
var errMissing = "moto_server is not installed (pip install 'moto[server]'); AWS integration tests need it"

// Start starts a moto_server for the test and stops it at cleanup.
// Without moto_server the test is skipped, or failed when $CI is set.
func Start(tb testing.TB) *Moto {
	tb.Helper()
	m, err := StartServer()
	if err != nil {
		Unavailable(tb, err)
	}
	tb.Cleanup(m.Stop)
	return m
}

// Unavailable skips (or, under CI, fails) a test that needs moto.
func Unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("moto unavailable under CI: %v", err)
	}
	tb.Skipf("skipping: %v", err)
}

// StartServer starts moto_server on a free loopback port; for TestMain.
func StartServer() (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("%s", errMissing)
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start moto_server: %w", err)
		}
		m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
		if lastErr = m.waitReady(20 * time.Second); lastErr == nil {
			return m, nil
		}
		m.Stop()
	}
	return nil, fmt.Errorf("moto_server did not start: %w", lastErr)
}

func (m *Moto) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.URL + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if m.cmd.ProcessState != nil {
			return fmt.Errorf("moto_server exited")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s after %s", m.URL, d)
}

// Stop kills the server.
func (m *Moto) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	}
}

// Reset clears every emulated resource.
func (m *Moto) Reset(tb testing.TB) {
	tb.Helper()
	resp, err := http.Post(m.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		tb.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
}

// Config returns an SDK config with static credentials that talks to url
// (moto itself, or a fault proxy in front of it).
func Config(url string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(url),
		// No retries: tests must see each failure exactly as injected.
		RetryMaxAttempts: 1,
	}
}

// Config returns an SDK config for this server.
func (m *Moto) Config() aws.Config { return Config(m.URL) }

// Env returns environment variables that point the oops binary (or the aws
// CLI) at url.
func Env(url string) []string {
	return []string{
		"AWS_ENDPOINT_URL=" + url,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Ctx is a test context with a deadline.
func Ctx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
