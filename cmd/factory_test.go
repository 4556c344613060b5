package cmd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// testFactory is a Factory on a fresh directory store, with no AWS and
// a fixed operator.
func testFactory(t *testing.T, rc string) (*Factory, store.Store, *bytes.Buffer) {
	t.Helper()
	wd := t.TempDir()
	if rc == "" {
		rc = `{"application-name": "api", "store": "rel"}`
	}
	if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	f := NewFactory("test")
	f.IO = &IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &errOut}
	f.Getwd = func() (string, error) { return wd, nil }
	env := map[string]string{"USER": "ada", "HOME": wd, "GIT_CONFIG_NOSYSTEM": "1"}
	f.Getenv = func(k string) string { return env[k] }
	return f, dir.New(filepath.Join(wd, "rel")), &errOut
}

// TestConfigFileNeedsNoWorkDir: with --config naming an absolute path,
// .oopsrc is read without asking for the current directory, so a command
// that needs nothing else from it runs from a directory that was removed
// (os.Getwd fails there), as before config.Open.
func TestConfigFileNeedsNoWorkDir(t *testing.T) {
	t.Parallel()
	f, _, errOut := testFactory(t, "")
	wd, err := f.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	f.Getwd = func() (string, error) { return "", errors.New("getwd: no such file or directory") }
	if code := Main(f, []string{"--config", filepath.Join(wd, ".oopsrc"), "lock", "status"}); code != ExitOK {
		t.Fatalf("exit %d, want %d: %s", code, ExitOK, errOut)
	}
	if got := f.IO.Out.(*bytes.Buffer).String(); got != "api is not locked\n" {
		t.Errorf("stdout %q, want %q", got, "api is not locked\n")
	}
}
