package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestFsckLocalLeftovers: a release half-unpacked by a killed local deploy
// is found by oops fsck (exit 1) and removed by --repair; a younger one,
// which may belong to a deploy still running, is left alone.
func TestFsckLocalLeftovers(t *testing.T) {
	f, _, _ := testFactory(t, `{"application-name": "api", "store": "rel", "target": "local", "command": ["./app"]}`)
	wd, _ := f.Getwd()
	releases := filepath.Join(wd, ".oops", "local", "releases")
	old := filepath.Join(releases, ".unpack-blue-123")
	fresh := filepath.Join(releases, ".unpack-green-456")
	kept := filepath.Join(releases, "1111111111111111111111111111111111111111-blue")
	for _, d := range []string{old, fresh, kept} {
		if err := os.MkdirAll(filepath.Join(d, "bin"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Now().Add(-48 * time.Hour)
	for _, d := range []string{old, kept} {
		if err := os.Chtimes(d, when, when); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	tests := []struct {
		opts     FsckOptions
		exit     int
		repaired bool
	}{
		{FsckOptions{JSON: true}, ExitError, false},
		{FsckOptions{JSON: true, Repair: true}, ExitOK, true},
		{FsckOptions{JSON: true}, ExitOK, false},
	}
	for i, tc := range tests {
		out := &bytes.Buffer{}
		f.IO.Out = out
		opts := tc.opts
		opts.IO, opts.Progressf = f.IO, f.IO.Progressf
		opts.Fsck = f.Runner().Fsck
		err := fsckRun(ctx, &opts)
		if got := ExitCode(err); got != tc.exit {
			t.Fatalf("run %d (%+v): exit %d (%v), want %d", i, tc.opts, got, err, tc.exit)
		}
		var res struct {
			Problems []struct {
				Key, Kind string
				Repaired  bool
			}
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		if i == 2 {
			if len(res.Problems) != 0 {
				t.Errorf("after --repair: %+v", res.Problems)
			}
			continue
		}
		if len(res.Problems) != 1 || res.Problems[0].Key != old || res.Problems[0].Kind != "leftover" || res.Problems[0].Repaired != tc.repaired {
			t.Errorf("run %d: problems %+v; want only the old unpack dir, repaired=%v", i, res.Problems, tc.repaired)
		}
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("%s still there after --repair: %v", old, err)
	}
	for _, d := range []string{fresh, kept} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("--repair removed %s: %v", d, err)
		}
	}
}

func TestFsckFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *FsckOptions) error) *cobra.Command {
		return newFsckCmd(flagFactory(), runF)
	}, []flagCase[FsckOptions]{
		{args: []string{"fsck"}, want: FsckOptions{}},
		{args: []string{"fsck", "--repair", "--deep", "--json"}, want: FsckOptions{Repair: true, Deep: true, JSON: true}},
		{args: []string{"fsck", "--deep"}, want: FsckOptions{Deep: true}},
		{args: []string{"fsck", "--fix"}, usage: "unknown flag: --fix"},
		{args: []string{"fsck", "index"}, usage: `oops fsck takes no arguments, got "index"`},
	})
}
