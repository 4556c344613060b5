package mangen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/cmd"
)

// Every command gets a page, with its flags and its long help.
func TestGenerate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := Generate(cmd.NewRoot(cmd.NewFactory("test")), dir, "test"); err != nil {
		t.Fatal(err)
	}
	for page, want := range map[string]string{
		"oops.1":              "rollback",
		"oops-rollback.1":     "no-lock",
		"oops-deploy.1":       "canary",
		"oops-hook-switch.1":  "CodeDeploy",
		"oops-list.1":         "template",
		"oops-lock-release.1": "force",
	} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		if !strings.Contains(string(b), want) || !strings.Contains(string(b), ".TH \"OOPS\"") {
			t.Errorf("%s does not say %q or has no man header:\n%.300s", page, want, b)
		}
	}
}
