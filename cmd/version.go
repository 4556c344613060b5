package cmd

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/spf13/cobra"
)

// VersionOptions are what `oops version` runs with: flags and dependencies.
type VersionOptions struct {
	IO *IOStreams
	// Version is the one set at build time (-ldflags); "" or "dev" when none was.
	Version string
	// BuildInfo is debug.ReadBuildInfo: the module version of a go install.
	BuildInfo func() (*debug.BuildInfo, bool)

	JSON   bool
	Export iostreams.Exporter // --jq, --template
}

// newVersionCmd builds `oops version`; runF replaces the run in flag tests (nil: versionRun).
func newVersionCmd(f *Factory, runF func(context.Context, *VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IO, Version: f.Version, BuildInfo: debug.ReadBuildInfo}
	c := &cobra.Command{
		Use:     "version",
		Short:   "Print the version of oops",
		Example: "  oops version\n  oops version --json",
		Args:    noArgs,
	}
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	return runCmd(c, opts, runF, versionRun)
}

func versionRun(_ context.Context, opts *VersionOptions) error {
	v := opts.Version
	if v == "" || v == "dev" {
		if bi, ok := opts.BuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		} else {
			v = "dev"
		}
	}
	if opts.JSON {
		return opts.Export.Write(opts.IO.Out, map[string]string{"version": v, "go": runtime.Version()}, time.Now)
	}
	fmt.Fprintf(opts.IO.Out, "oops %s (%s %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
