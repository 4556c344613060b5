package local

import "context"

// markVerified records that the release on cs.Color passed its health
// check: from now on it is a rollback target, no longer "installing".
func (t *Target) markVerified(ctx context.Context, cs colorState) error {
	cs.Installing = false
	return t.saveColor(ctx, cs)
}
