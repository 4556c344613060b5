package cmd

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/spf13/cobra"
)

// TestListOrdersTiesByAncestry: releases published at the same instant,
// from commits made at the same second (a rebase, a scripted series),
// list newest first: a descendant before its ancestors, whatever their
// SHAs and the order they were published in.
func TestListOrdersTiesByAncestry(t *testing.T) {
	t.Parallel()
	for attempt := range 20 {
		wd := t.TempDir()
		chain := commitChain(t, wd, 4, attempt)
		byDesc := slices.Clone(chain)
		slices.Sort(byDesc)
		slices.Reverse(byDesc)
		newestFirst := slices.Clone(chain)
		slices.Reverse(newestFirst)
		if slices.Equal(byDesc, newestFirst) {
			continue // SHA order would pass by chance: try other commits
		}
		if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte(`{"application-name": "api", "store": "rel"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		artifact := filepath.Join(t.TempDir(), "build.zip")
		if err := os.WriteFile(artifact, zipOf(t, "app.txt", "v1"), 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2024, 5, 1, 12, 0, 0, 500_000_000, time.UTC)
		run := func(args ...string) string {
			t.Helper()
			var out, errOut bytes.Buffer
			f := NewFactory("test")
			f.IO = &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
			f.Getwd = func() (string, error) { return wd, nil }
			f.Now = func() time.Time { return at }
			env := map[string]string{"USER": "ada", "HOME": wd, "GIT_CONFIG_NOSYSTEM": "1"}
			f.Getenv = func(k string) string { return env[k] }
			if code := Main(f, args); code != 0 {
				t.Fatalf("oops %v: exit %d\n%s", args, code, errOut.String())
			}
			return out.String()
		}
		// Published in an order that is neither ancestry nor SHA order.
		for _, i := range []int{1, 3, 0, 2} {
			run("publish", artifact, "--commit", chain[i])
		}
		var got []string
		for line := range strings.Lines(run("list")) {
			got = append(got, strings.Split(line, "\t")[0])
		}
		var want []string
		for _, sha := range newestFirst {
			want = append(want, sha[:7])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("oops list: %v, want the descendant first: %v", got, want)
		}
		return
	}
	t.Skip("every chain tried had its SHAs in ancestry order")
}

// commitChain makes n commits, each on the previous one, all at the same
// second, and returns their SHAs oldest first.
func commitChain(t *testing.T, dir string, n, seed int) []string {
	t.Helper()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)
	sig := &object.Signature{Name: "Ada", Email: "ada@example.com", When: when}
	var shas []string
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, "f.txt"), fmt.Appendf(nil, "%d/%d", seed, i), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add("f.txt"); err != nil {
			t.Fatal(err)
		}
		h, err := wt.Commit(fmt.Sprintf("change %d", i), &git.CommitOptions{Author: sig, Committer: sig})
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, h.String())
	}
	return shas
}

func zipOf(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestListFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *ListOptions) error) *cobra.Command {
		return newListCmd(flagFactory(), runF)
	}, []flagCase[ListOptions]{
		{args: []string{"list"}, want: ListOptions{}},
		{args: []string{"list", "--limit", "5", "--json"}, want: ListOptions{Limit: 5, JSON: true}},
		{args: []string{"list", "-n", "0"}, want: ListOptions{}},
		{args: []string{"list", "-n", "-1"}, usage: "--limit must be 0 (all) or more, got -1"},
		{args: []string{"list", "--limit", "five"}, usage: `invalid argument "five" for "-n, --limit"`},
		{args: []string{"list", "--json=maybe"}, usage: `invalid argument "maybe"`},
		{args: []string{"list", "--jq", ".[0].commit"}, want: ListOptions{JSON: true, Export: iostreams.Exporter{JQ: ".[0].commit"}}},
		{args: []string{"list", "-n", "3", "-t", "{{range .}}{{.commit}}{{end}}"}, want: ListOptions{Limit: 3, JSON: true, Export: iostreams.Exporter{Template: "{{range .}}{{.commit}}{{end}}"}}},
		{args: []string{"list", "--jq", ".[] | select("}, usage: `invalid output filter: --jq ".[] | select("`},
		{args: []string{"list", "--template", "{{range .}}"}, usage: "invalid output filter: --template"},
		{args: []string{"list", "-q", ".", "-t", "{{.}}"}, usage: "--jq and --template cannot be combined"},
		{args: []string{"list", "--all"}, usage: "unknown flag: --all"},
		{args: []string{"list", "HEAD"}, usage: `oops list takes no arguments, got "HEAD"`},
	})
}
