package workflow

import (
	"errors"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// ResultOf classifies how a change ended, as history records it: refused
// means oops decided not to act (a gate, a conflict, the operator, another
// holder); failed means it tried and something broke. The order matters.
func ResultOf(err error) string {
	var ue UsageError
	switch {
	case err == nil:
		return release.ResultOK
	case errors.Is(err, ErrAwaitingApproval) && !errors.Is(err, store.ErrLockLost) && !errors.Is(err, target.ErrFenced):
		// Installed as asked; the switch waits for oops approve. The
		// error keeps the note.
		return release.ResultOK
	case errors.Is(err, target.ErrVerifyInterrupted) && !errors.Is(err, store.ErrLockLost) && !errors.Is(err, target.ErrFenced):
		// The switch was made and stands; the operator chose not to wait
		// for verification, as --verify-timeout 0 does: a rollback still
		// marks the release it left BAD. The error keeps the note.
		return release.ResultOK
	case IsAWSError(err):
		// AWS answered an attempted change with an error: it failed, even
		// when the target then reports an inconsistent state.
		return release.ResultFailed
	case errors.Is(err, target.ErrUnhealthy),
		errors.Is(err, target.ErrAborted),
		errors.Is(err, target.ErrInconsistent),
		errors.Is(err, target.ErrMisconfigured),
		errors.Is(err, store.ErrImmutable),
		errors.Is(err, target.ErrIntegrity), // checked before anything changed
		errors.Is(err, store.ErrBadRelease),
		errors.Is(err, release.ErrUnknownRevision),
		errors.Is(err, release.ErrAmbiguous),
		errors.Is(err, release.ErrNotPublished),
		errors.As(err, &ue):
		return release.ResultRefused
	case errors.Is(err, store.ErrLocked) && !errors.Is(err, store.ErrLockLost):
		return release.ResultRefused
	}
	return release.ResultFailed
}

// IsAWSError reports an error answered by an AWS API (any smithy API error
// in the chain).
func IsAWSError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae)
}
