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

func TestColorStateWhere(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c    target.ColorState
		want string
	}{
		{target.ColorState{Port: 8081}, "port 8081"},
		{target.ColorState{TargetGroup: "web-green"}, "target group web-green"},
		{target.ColorState{Port: 8081, TargetGroup: "web-green"}, "port 8081"},
	} {
		if got := tt.c.Where(); got != tt.want {
			t.Errorf("%+v.Where() = %q, want %q", tt.c, got, tt.want)
		}
	}
}
