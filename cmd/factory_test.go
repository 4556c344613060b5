package cmd

import (
	"bytes"
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
