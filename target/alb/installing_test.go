package alb_test

import (
	"strings"
	"testing"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// A deploy marks the off color installing before CodeDeploy touches it, so
// a deploy killed half-way never leaves the old commit looking warm there;
// SetCommit, once it passed, clears the mark.
func TestInstallingUntilSetCommit(t *testing.T) {
	e := setup(t, albtest.Options{Weighted: true})
	old, sha := strings.Repeat("1", 40), strings.Repeat("2", 40)
	var tg target.Target = e.target(alb.Config{})
	if err := tg.SetCommit(e.ctx, release.Green, old); err != nil {
		t.Fatal(err)
	}
	ir, ok := tg.(target.InstallRecorder)
	if !ok {
		t.Fatal("the ALB target does not record installs")
	}
	if err := ir.SetInstalling(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	st, err := e.target(alb.Config{}).State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Off.Commit != sha || !st.Off.Installing {
		t.Errorf("off = %s installing=%v, want %s installing", st.Off.Commit, st.Off.Installing, sha)
	}
	// An install that never started ("" clears the mark): the old record
	// is back.
	if err := ir.SetInstalling(e.ctx, release.Green, ""); err != nil {
		t.Fatal(err)
	}
	if st, err := e.target(alb.Config{}).State(e.ctx); err != nil || st.Off.Commit != old || st.Off.Installing {
		t.Fatalf("after clearing the mark off = %+v (%v), want %s verified", st.Off, err, old)
	}
	if err := ir.SetInstalling(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	if err := tg.SetCommit(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	st, err = e.target(alb.Config{}).State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Off.Commit != sha || st.Off.Installing {
		t.Errorf("after SetCommit off = %s installing=%v, want %s verified", st.Off.Commit, st.Off.Installing, sha)
	}
}
