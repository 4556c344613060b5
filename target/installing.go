package target

import (
	"context"

	"github.com/oops-deploy/oops/release"
)

// InstallRecorder is implemented by targets that record what a color runs
// apart from what installs it (ELB and ALB tags, CodeDeploy installs): a
// deploy marks the color installing commit before the install starts, and
// SetCommit, once the release passed its health check, clears the mark.
// Until then State reports that color with Installing set (and commit as
// its Commit), so a deploy killed half-way never leaves the release it
// replaced looking warm.
//
// SetInstalling with commit "" clears the mark: a deploy that failed before
// it changed anything (ErrNotStarted) gives the color back its record.
type InstallRecorder interface {
	SetInstalling(ctx context.Context, c release.Color, commit string) error
}
