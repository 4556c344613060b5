package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpen: --config is relative to the current directory; without it the
// nearest .oopsrc from -C DIR (relative to the current directory) up.
func TestOpen(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(rel, app string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(`{"application-name": "`+app+`", "store": "rel"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".oopsrc", "top")
	write("svc/.oopsrc", "svc")
	write("conf/prod.json", "prod")
	if err := os.MkdirAll(filepath.Join(root, "svc/deep/er"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, wd, dir, want string }{
		{"", root, "", "top"},
		{"", filepath.Join(root, "svc/deep/er"), "", "svc"},
		{"", root, "svc/deep", "svc"},
		{"", filepath.Join(root, "svc"), filepath.Join(root, "conf"), "top"},
		{"conf/prod.json", root, "svc", "prod"},
		{filepath.Join(root, "conf/prod.json"), "/", "", "prod"},
	}
	for _, tt := range tests {
		c, err := Open(tt.path, tt.wd, tt.dir)
		if err != nil || c.ApplicationName != tt.want {
			t.Errorf("Open(%q, %q, %q) = %v, %v; want %s", tt.path, tt.wd, tt.dir, c, err, tt.want)
		}
	}
	var nf *NotFoundError
	if _, err := Open("", t.TempDir(), ""); !errors.As(err, &nf) {
		t.Errorf("no .oopsrc anywhere: %v, want NotFoundError", err)
	}
}
