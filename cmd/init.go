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

type initOptions struct {
	App    string
	Store  string
	DryRun bool
}

// DefaultStoreDir is where `oops init` puts the directory store, relative
// to the .oopsrc folder.
const DefaultStoreDir = ".oops"

func newInitCmd(f *Factory) *cobra.Command {
	var opts initOptions
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
		RunE: func(cmd *cobra.Command, _ []string) error { return f.runInit(cmd.Context(), opts) },
	}
	c.Flags().StringVar(&opts.App, "app", "", "application `name` (default: the repository or folder name)")
	c.Flags().StringVar(&opts.Store, "store", DefaultStoreDir, "store: a `directory` (relative to the .oopsrc folder) or s3://bucket[/prefix]")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the file instead of writing it")
	return c
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (f *Factory) runInit(_ context.Context, opts initOptions) error {
	wd, err := f.WorkDir()
	if err != nil {
		return err
	}
	path := filepath.Join(wd, config.FileName)
	if f.ConfigPath != "" {
		path = f.ConfigPath
		if !filepath.IsAbs(path) {
			cwd, err := f.Getwd()
			if err != nil {
				return err
			}
			path = filepath.Join(cwd, path)
		}
	}
	app := opts.App
	if app == "" {
		app = filepath.Base(wd)
		if r, err := release.OpenRepo(wd); err == nil {
			app = filepath.Base(r.Root())
		}
		app = strings.Trim(unsafeName.ReplaceAllString(app, "-"), ".-")
		if app == "" {
			app = "app"
		}
	}
	body, err := json.MarshalIndent(struct {
		App   string `json:"application-name"`
		Store string `json:"store"`
	}{app, opts.Store}, "", "  ")
	if err != nil {
		return err
	}
	body = append(body, '\n')
	// What init writes must load: check it with the real parser.
	if _, err := config.Parse(path, body); err != nil {
		return withHint(usageErrorf("init: %w", err), "pick another --app or --store")
	}
	if opts.DryRun {
		fmt.Fprintf(f.IO.ErrOut, "would write %s:\n", path)
		_, err := f.IO.Out.Write(body)
		return err
	}
	// O_EXCL: refuse to overwrite, even a file created a moment ago.
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
	fmt.Fprintf(f.IO.Out, "wrote %s (application %q, store %s)\n", path, app, opts.Store)
	if !strings.Contains(opts.Store, "://") && !filepath.IsAbs(opts.Store) {
		fmt.Fprintf(f.IO.ErrOut, "next: add %s/ to .gitignore, then: oops publish build.zip && oops list\n", strings.TrimSuffix(opts.Store, "/"))
	} else {
		fmt.Fprintln(f.IO.ErrOut, "next: oops publish build.zip && oops list")
	}
	return nil
}
