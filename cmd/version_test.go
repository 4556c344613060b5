package cmd

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/spf13/cobra"
)

func TestVersionFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *VersionOptions) error) *cobra.Command {
		return newVersionCmd(flagFactory(), runF)
	}, []flagCase[VersionOptions]{
		{args: []string{"version"}, want: VersionOptions{Version: "test"}},
		{args: []string{"version", "--json"}, want: VersionOptions{Version: "test", JSON: true}},
		{args: []string{"version", "--short"}, usage: "unknown flag: --short"},
		{args: []string{"version", "v1"}, usage: `oops version takes no arguments, got "v1"`},
	})
}

// TestVersionRun: the version set at build time wins; without one, a
// `go install ...@v1.2.3` binary says its module version, and a local
// build says dev.
func TestVersionRun(t *testing.T) {
	t.Parallel()
	module := func(v string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: v}}, true }
	}
	tests := []struct {
		name      string
		version   string
		buildInfo func() (*debug.BuildInfo, bool)
		want      string
	}{
		{"ldflags", "v2.0.0", module("v1.2.3"), "v2.0.0"},
		{"go install", "dev", module("v1.2.3"), "v1.2.3"},
		{"no version set", "", module("v1.2.3"), "v1.2.3"},
		{"local build", "dev", module("(devel)"), "dev"},
		{"no build info", "", func() (*debug.BuildInfo, bool) { return nil, false }, "dev"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		opts := &VersionOptions{IO: &IOStreams{Out: &out}, Version: tt.version, BuildInfo: tt.buildInfo}
		if err := versionRun(context.Background(), opts); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		want := "oops " + tt.want + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
		if out.String() != want {
			t.Errorf("%s: %q, want %q", tt.name, out.String(), want)
		}
	}
}
