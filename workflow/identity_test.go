package workflow

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5"
)

// TestWhoIsTheGitUserOffAWS: without AWS, events name the git user
// (repository config over global config), else the OS user.
func TestWhoIsTheGitUserOffAWS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		global, local string
		want          string
	}{
		{"no git config: the OS user", "", "", "ada"},
		{"global user.name", "Ada Lovelace", "", "Ada Lovelace"},
		{"the repository's own user.name wins", "Ada Lovelace", "Ada (work)", "Ada (work)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, "")
			wd := fx.wd
			if tt.global != "" {
				if err := os.WriteFile(filepath.Join(wd, ".gitconfig"), []byte("[user]\n\tname = "+tt.global+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.local != "" {
				repo, err := git.PlainInit(wd, false)
				if err != nil {
					t.Fatal(err)
				}
				c, _ := repo.Config()
				c.User.Name = tt.local
				if err := repo.SetConfig(c); err != nil {
					t.Fatal(err)
				}
			}
			id := fx.runner().Identity(context.Background())
			if id.Who != tt.want || id.OSUser != "ada" || id.Host == "" {
				t.Errorf("identity %+v, want who %q, os user ada and a host", id, tt.want)
			}
		})
	}
}
