package cmd

import (
	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release/archive"
	"github.com/oops-deploy/oops/workflow"
)

// archiveLimits are the archive limits of .oopsrc (zero: the defaults),
// the same for publish (workflow.Publish) and for the local target's
// unpacking.
func archiveLimits(c *config.Config) archive.Limits { return workflow.ArchiveLimits(c) }
