package cmd

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples: `oops X --help` shows examples for every
// command a user can see, including completion and help.
func TestEveryCommandHasExamples(t *testing.T) {
	f := &Factory{IO: &IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		if c.Example == "" {
			t.Errorf("%q has no Example for --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := NewRoot(f)
	walk(root)
	for _, name := range []string{"completion", "help", "publish", "list", "init", "version"} {
		if c, _, err := root.Find([]string{name}); err != nil || c.Name() != name {
			t.Errorf("no %q command", name)
		}
	}
}
