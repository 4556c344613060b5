package cmd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/workflow"
)

// InitOptions are what `oops init` runs with: flags and dependencies.
type InitOptions struct {
	IO      *IOStreams
	WorkDir func() (string, error)
	Getwd   func() (string, error)
	// ConfigPath is the global --config: the file to write, when set.
	ConfigPath string

	App    string
	Store  string
	DryRun bool
}

// newInitCmd builds `oops init`; runF replaces the run in flag tests (nil:
// initRun).
func newInitCmd(f *Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IO, WorkDir: f.WorkDir, Getwd: f.Getwd}
	c := &cobra.Command{
		Use:   "init",
		Short: "Write a starter .oopsrc that uses a local directory store",
		Long: `Write a starter .oopsrc in the current folder (or -C DIR, or the file
named by --config): the application name (the git repository's or the
folder's name unless --app) and a directory store (` + workflow.DefaultStoreDir + ` unless
--store), so publish and list work with no cloud at all.

init never overwrites an existing file. It only writes a local file, so it
takes no lock and records no event.`,
		Example: `  oops init
  oops init --app checkout --store /srv/releases
  oops init --store s3://my-bucket/releases
  oops init --dry-run           # print the file, write nothing`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.ConfigPath = f.ConfigPath // a global flag: parsed by now
			return nil
		},
	}
	c.Flags().StringVar(&opts.App, "app", "", "application `name` (default: the repository or folder name)")
	c.Flags().StringVar(&opts.Store, "store", workflow.DefaultStoreDir, "store: a `directory` (relative to the .oopsrc folder) or s3://bucket[/prefix]")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the file instead of writing it")
	return runCmd(c, opts, runF, initRun)
}

// initRun writes the starter .oopsrc (or prints it with --dry-run).
func initRun(_ context.Context, opts *InitOptions) error {
	wd, path, err := initPath(opts)
	if err != nil {
		return err
	}
	st, err := workflow.NewStarter(wd, path, opts.App, opts.Store)
	if err != nil {
		return err
	}
	if opts.DryRun {
		fmt.Fprintf(opts.IO.ErrOut, "would write %s:\n", path)
		_, err := opts.IO.Out.Write(st.Body)
		return err
	}
	if err := st.Write(); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s (application %q, store %s)\n", path, st.App, opts.Store)
	if !strings.Contains(opts.Store, "://") && !filepath.IsAbs(opts.Store) {
		fmt.Fprintf(opts.IO.ErrOut, "next: add %s/ to .gitignore, then: oops publish build.zip && oops list\n", strings.TrimSuffix(opts.Store, "/"))
	} else {
		fmt.Fprintln(opts.IO.ErrOut, "next: oops publish build.zip && oops list")
	}
	return nil
}

// initPath is the folder init runs in and the file it writes: --config
// (relative to the current directory), else .oopsrc in that folder.
func initPath(opts *InitOptions) (wd, path string, err error) {
	if wd, err = opts.WorkDir(); err != nil {
		return "", "", err
	}
	path = filepath.Join(wd, config.FileName)
	if opts.ConfigPath != "" {
		path = opts.ConfigPath
		if !filepath.IsAbs(path) {
			cwd, err := opts.Getwd()
			if err != nil {
				return "", "", err
			}
			path = filepath.Join(cwd, path)
		}
	}
	return wd, path, nil
}
