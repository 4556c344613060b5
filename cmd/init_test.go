package cmd

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// recordOptions runs `oops args...` with only the command build makes
// (given a runF that records its options), under a root that turns flag
// errors into usage errors as NewRoot does. It returns the options the
// run got (nil: it did not run) and the error.
func recordOptions[O any](f *Factory, build func(*Factory, func(context.Context, *O) error) *cobra.Command, args ...string) (*O, error) {
	var got *O
	root := &cobra.Command{Use: "oops", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%w", err) })
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.AddCommand(build(f, func(_ context.Context, o *O) error { got = o; return nil }))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return got, err
}

func TestInitFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		configPath string // the global --config, set after the command is built
		want       InitOptions
		usage      string // part of the usage error, when the run must not start
	}{
		{args: []string{"init"}, want: InitOptions{Store: ".oops"}},
		{args: []string{"init", "--app", "checkout", "--store", "s3://b/rel", "--dry-run"},
			want: InitOptions{App: "checkout", Store: "s3://b/rel", DryRun: true}},
		{args: []string{"init"}, configPath: "ci.oopsrc", want: InitOptions{Store: ".oops", ConfigPath: "ci.oopsrc"}},
		{args: []string{"init", "shop"}, usage: `oops init takes no arguments, got "shop"`},
		{args: []string{"init", "--force"}, usage: "unknown flag: --force"},
	}
	for _, tt := range tests {
		f := NewFactory("test")
		got, err := recordOptions(f, func(f *Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
			c := newInitCmd(f, runF)
			f.ConfigPath = tt.configPath // as the root's persistent flags do, after NewRoot
			return c
		}, tt.args...)
		name := strings.Join(tt.args, " ")
		if tt.usage != "" {
			if got != nil || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.usage) {
				t.Errorf("%s: ran %v, err %v (exit %d), want exit 2 with %q", name, got != nil, err, ExitCode(err), tt.usage)
			}
			continue
		}
		if err != nil || got == nil {
			t.Fatalf("%s: err %v, ran %v", name, err, got != nil)
		}
		if got.IO == nil || got.WorkDir == nil || got.Getwd == nil {
			t.Errorf("%s: dependencies not bound: %+v", name, got)
		}
		if got.App != tt.want.App || got.Store != tt.want.Store || got.DryRun != tt.want.DryRun || got.ConfigPath != tt.want.ConfigPath {
			t.Errorf("%s: got app %q store %q dry-run %v config %q, want %+v", name, got.App, got.Store, got.DryRun, got.ConfigPath, tt.want)
		}
	}
}

// TestInitRun: where init writes, the application it names, and that it
// never overwrites.
func TestInitRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		folder     string
		configPath string
		app        string
		dryRun     bool
		exists     bool
		wantFile   string // relative to the temporary directory
		wantApp    string
		wantExit   int
	}{
		{name: "folder name made safe", folder: "my shop!", wantFile: "my shop!/.oopsrc", wantApp: "my-shop"},
		{name: "nothing safe in the name", folder: "...", wantFile: ".../.oopsrc", wantApp: "app"},
		{name: "--app", folder: "web", app: "checkout", wantFile: "web/.oopsrc", wantApp: "checkout"},
		{name: "--config is relative to the current directory", folder: "web", configPath: "ci.oopsrc", wantFile: "ci.oopsrc", wantApp: "web"},
		{name: "--dry-run writes nothing", folder: "web", dryRun: true, wantApp: "web"},
		{name: "never overwrites", folder: "web", exists: true, wantExit: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cwd := t.TempDir()
			wd := filepath.Join(cwd, tt.folder)
			if err := os.Mkdir(wd, 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.exists {
				if err := os.WriteFile(filepath.Join(wd, ".oopsrc"), []byte("{}\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out, errOut bytes.Buffer
			opts := &InitOptions{
				IO:      &IOStreams{Out: &out, ErrOut: &errOut},
				WorkDir: func() (string, error) { return wd, nil },
				Getwd:   func() (string, error) { return cwd, nil },
				App:     tt.app, Store: ".oops", DryRun: tt.dryRun, ConfigPath: tt.configPath,
			}
			err := initRun(context.Background(), opts)
			if code := ExitCode(err); code != tt.wantExit {
				t.Fatalf("exit %d (%v), want %d", code, err, tt.wantExit)
			}
			wantBody := `"application-name": "` + tt.wantApp + `"`
			switch {
			case tt.exists:
				if b, _ := os.ReadFile(filepath.Join(wd, ".oopsrc")); string(b) != "{}\n" {
					t.Errorf(".oopsrc = %q, overwritten", b)
				}
			case tt.dryRun:
				if _, err := os.Stat(filepath.Join(wd, ".oopsrc")); err == nil {
					t.Error("--dry-run wrote .oopsrc")
				}
				if !strings.Contains(out.String(), wantBody) {
					t.Errorf("stdout %q, want the file with %s", out.String(), wantBody)
				}
			default:
				b, err := os.ReadFile(filepath.Join(cwd, tt.wantFile))
				if err != nil || !strings.Contains(string(b), wantBody) {
					t.Errorf("%s: %q, %v; want %s", tt.wantFile, b, err, wantBody)
				}
			}
		})
	}
}
