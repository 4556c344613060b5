package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// DefaultStoreDir is where `oops init` puts the directory store, relative
// to the .oopsrc folder.
const DefaultStoreDir = ".oops"

// Starter is the .oopsrc `oops init` writes: an application name and a
// store, so publish and list work with no cloud at all.
type Starter struct {
	Path string
	App  string // the repository's or folder's name unless given
	Body []byte
}

// NewStarter is the starter .oopsrc for path, run in folder wd, checked
// with the real parser: what init writes must load.
func NewStarter(wd, path, app, storeURL string) (*Starter, error) {
	if app == "" {
		app = defaultApp(wd)
	}
	body, err := json.MarshalIndent(struct {
		App   string `json:"application-name"`
		Store string `json:"store"`
	}{app, storeURL}, "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	if _, err := config.Parse(path, body); err != nil {
		return nil, target.Hinted(Usagef("init: %w", err), "pick another --app or --store")
	}
	return &Starter{Path: path, App: app, Body: body}, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

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

// Write writes the starter to a new file, refusing to overwrite one, even
// a file created a moment ago (O_EXCL).
func (s *Starter) Write() error {
	path, body := s.Path, s.Body
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return target.Hinted(Usagef("%s already exists; init does not overwrite it", path), "edit it by hand (keys: see .oopsrc.example), or remove it and run oops init again")
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
