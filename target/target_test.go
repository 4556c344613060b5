package target_test

import (
	"testing"

	"github.com/oops-deploy/oops/target"
)

// CommitKnown decides whether rollback looks up BAD marks, what history
// records and what status prints: only a real commit counts.
func TestCommitKnown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		commit string
		want   bool
	}{
		{"", false},
		{target.UnknownCommit, false},
		{"unknown", false}, // the value --json shows and scripts may compare with
		{"0123456789abcdef0123456789abcdef01234567", true},
		{"abc1234", true},
	} {
		if got := (target.ColorState{Commit: tc.commit}).CommitKnown(); got != tc.want {
			t.Errorf("CommitKnown() with Commit %q = %v, want %v", tc.commit, got, tc.want)
		}
	}
}
