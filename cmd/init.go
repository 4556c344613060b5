package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
)

// InitOptions are what `oops init` runs with: its flags, and the
// dependencies the run takes from the Factory (bound in the constructor,
// replaced in tests).
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

// DefaultStoreDir is where `oops init` puts the directory store, relative
// to the .oopsrc folder.
const DefaultStoreDir = ".oops"

// newInitCmd builds `oops init`; runF replaces the run in flag tests (nil:
// initRun).
func newInitCmd(f *Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IO, WorkDir: f.WorkDir, Getwd: f.Getwd}
	c := &cobra.Command{
		Use:   "init",
		Short: "Write a starter .oopsrc that uses a local directory store",
		Long: `Write a starter .oopsrc in the current folder (or -C DIR, or the file
named by --config): the application name (the git repository's or the
folder's name unless --app) and a directory store (` + DefaultStoreDir + ` unless
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
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return initRun(cmd.Context(), opts)
		},
	}
	c.Flags().StringVar(&opts.App, "app", "", "application `name` (default: the repository or folder name)")
	c.Flags().StringVar(&opts.Store, "store", DefaultStoreDir, "store: a `directory` (relative to the .oopsrc folder) or s3://bucket[/prefix]")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the file instead of writing it")
	return c
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// initRun writes the starter .oopsrc (or prints it with --dry-run).
func initRun(_ context.Context, opts *InitOptions) error {
	wd, path, err := initPath(opts)
	if err != nil {
		return err
	}
	app := opts.App
	if app == "" {
		app = defaultApp(wd)
	}
	body, err := initBody(path, app, opts.Store)
	if err != nil {
		return err
	}
	if opts.DryRun {
		fmt.Fprintf(opts.IO.ErrOut, "would write %s:\n", path)
		_, err := opts.IO.Out.Write(body)
		return err
	}
	if err := writeNew(path, body); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "wrote %s (application %q, store %s)\n", path, app, opts.Store)
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

// defaultApp names the application after the git repository wd is in,
// else wd itself, keeping only characters safe in a name.
func defaultApp(wd string) string {
	app := filepath.Base(wd)
	if r, err := release.OpenRepo(wd); err == nil {
		app = filepath.Base(r.Root())
	}
	app = strings.Trim(unsafeName.ReplaceAllString(app, "-"), ".-")
	if app == "" {
		app = "app"
	}
	return app
}

// initBody is the .oopsrc init writes at path, checked with the real
// parser: what init writes must load.
func initBody(path, app, storeURL string) ([]byte, error) {
	body, err := json.MarshalIndent(struct {
		App   string `json:"application-name"`
		Store string `json:"store"`
	}{app, storeURL}, "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	if _, err := config.Parse(path, body); err != nil {
		return nil, withHint(usageErrorf("init: %w", err), "pick another --app or --store")
	}
	return body, nil
}

// writeNew writes body to a new file at path, refusing to overwrite one,
// even a file created a moment ago (O_EXCL).
func writeNew(path string, body []byte) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return withHint(usageErrorf("%s already exists; init does not overwrite it", path), "edit it by hand (keys: see .oopsrc.example), or remove it and run oops init again")
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := file.Write(body); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
