package cmd

import (
	"errors"
	"fmt"
	"io"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release/archive"
)

// archiveLimits are the archive limits of .oopsrc (zero: the defaults),
// the same for publish and for the local target's unpacking.
func archiveLimits(c *config.Config) archive.Limits {
	return archive.Limits{
		MaxSize:    c.Values.ArchiveMaxSize,
		MaxEntries: c.Values.ArchiveMaxEntries,
		MaxRatio:   c.Values.ArchiveMaxRatio,
	}
}

// checkArtifact validates the artifact named name (extension ext) with
// the rules the local target unpacks with; an invalid one is bad input
// (exit 2) naming the entry and the rule.
func checkArtifact(r io.ReaderAt, size int64, name, ext string, lim archive.Limits) error {
	const hint = "fix the build so that it makes a valid archive; oops publishes only what it would unpack (README: Release integrity)"
	want := archive.TarGz
	if ext == ".zip" {
		want = archive.Zip
	}
	got, err := archive.Sniff(r, size)
	if err == nil && got != want {
		return withHint(usageErrorf("publish %s: it is a %s archive, not %s: name it %s", name, got, ext, "."+string(got)),
			"CodeDeploy and the local target read the format from the name")
	}
	if err == nil {
		_, err = archive.Validate(r, size, lim)
	}
	var ae *archive.Error
	if errors.As(err, &ae) {
		return withHint(usageErrorf("publish %s: %w", name, err), hint)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	return nil
}
