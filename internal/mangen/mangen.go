// Package mangen writes a man page per oops command (make man), from the
// commands themselves, so the pages never drift from --help.
package mangen

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Generate writes oops.1 and oops-<command>.1 for every command under
// root into dir.
func Generate(root *cobra.Command, dir, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	root.DisableAutoGenTag = true // no date in the pages: they stay reproducible
	header := &doc.GenManHeader{Title: "OOPS", Section: "1", Source: "oops " + version, Manual: "oops manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("write man pages to %s: %w", dir, err)
	}
	return nil
}
