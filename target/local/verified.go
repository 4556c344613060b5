package local

// markVerified records that the release on cs.Color passed its health
// check: from now on it is a rollback target, no longer "installing".
func (t *Target) markVerified(cs colorState) error {
	cs.Installing = false
	return writeColor(t.opts.StateDir, cs)
}
