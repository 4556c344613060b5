package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/internal/iostreams"
	"github.com/oops-deploy/oops/workflow"
)

// HookFetchOptions are what `oops hook fetch` runs with.
type HookFetchOptions struct {
	IO             *IOStreams
	Runner         func() *workflow.Runner
	InstanceCommit func(ctx context.Context, endpoint string) (string, error)

	Dir, Commit, IMDSEndpoint string
	JSON                      bool
	Export                    iostreams.Exporter // --jq, --template
}

// newHookFetchCmd builds `oops hook fetch`; runF replaces the run in flag
// tests (nil: hookFetchRun).
func newHookFetchCmd(f *Factory, runF func(context.Context, *HookFetchOptions) error) *cobra.Command {
	opts := &HookFetchOptions{IO: f.IO, Runner: f.Runner, InstanceCommit: f.Backends().InstanceCommit}
	c := &cobra.Command{
		Use:   "fetch",
		Short: "Download this instance's release, verify it and unpack it (user data)",
		Long: `For the user data of an auto-scaling group's instances: find the commit this
instance was launched for (its oops:commit tag, read through the instance
metadata service, else through EC2 from its tags or its launch template
version), download that release from the store, check its size and
SHA-256 against what was published, and unpack it into --dir with the rules
of the local target (nothing lands outside the folder; a refused archive
leaves it empty). The folder is printed on stdout.`,
		Example: `  oops -C /opt/app hook fetch --dir /opt/app/current
  oops hook fetch --commit 4f2a1c9e... --dir /tmp/r`,
		Args: noArgs,
	}
	fl := c.Flags()
	fl.StringVar(&opts.Dir, "dir", "", "unpack into this `folder` (created, or empty; default <application>-<commit> here)")
	fl.StringVar(&opts.Commit, "commit", "", "fetch this full `sha` instead of the instance's")
	fl.StringVar(&opts.IMDSEndpoint, "imds-endpoint", "", "instance metadata service `URL` (default: the SDK's, or AWS_EC2_METADATA_SERVICE_ENDPOINT)")
	addJSONFlags(c, &opts.JSON, &opts.Export, "print JSON")
	return runCmd(c, opts, runF, hookFetchRun)
}

func hookFetchRun(ctx context.Context, opts *HookFetchOptions) error {
	out, err := opts.Runner().Fetch(ctx, workflow.FetchRequest{Dir: opts.Dir, Commit: opts.Commit,
		InstanceCommit: func(ctx context.Context) (string, error) { return opts.InstanceCommit(ctx, opts.IMDSEndpoint) }})
	if err != nil {
		return err
	}
	if opts.JSON {
		return opts.Export.Write(opts.IO.Out, out, time.Now)
	}
	opts.IO.Progressf("%s unpacked (%s)", out.Release.Short(), map[bool]string{true: "size and SHA-256 verified", false: "UNVERIFIED"}[out.Verified])
	_, err = fmt.Fprintln(opts.IO.Out, out.Dir)
	return err
}
