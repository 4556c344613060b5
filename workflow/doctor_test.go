package workflow

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// TestDoctorWithoutATarget: a store with no releases and no target warns
// (list and publish still work) and fails nothing; a lock held by someone
// else is a warning naming the holder.
func TestDoctorWithoutATarget(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	ctx := context.Background()
	held, err := store.AcquireLock(ctx, fx.st, store.LockInfo{App: "api", Holder: "grace", Host: "elsewhere", PID: 7, Command: "oops deploy v2"}, store.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	var got []string
	for _, c := range fx.runner().Doctor(ctx) {
		got = append(got, c.Name+"="+c.Status)
		if c.Status == "fail" || (c.Status == "warn" && c.Hint == "") {
			t.Errorf("check %+v: want no failure, and a hint with every warning", c)
		}
		if c.Name == "lock" && !strings.Contains(c.Detail, "grace") {
			t.Errorf("lock check %q does not name the holder", c.Detail)
		}
	}
	want := "config=ok git=warn store=warn lock=warn fsck=ok target=warn"
	if strings.Join(got, " ") != want {
		t.Errorf("checks %s, want %s", strings.Join(got, " "), want)
	}
}

// TestDoctorTargetThatCannotOpen: the target's error is doctor's failure,
// with its exit code, and the rollback check is not run.
func TestDoctorTargetThatCannotOpen(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, `{"application-name": "api", "store": "rel", "target": "local"}`)
	boom := errors.New("no such proxy")
	fx.d.Target = func(context.Context) (target.Target, error) { return nil, boom }
	checks := fx.runner().Doctor(context.Background())
	last := checks[len(checks)-1]
	if last.Name != "target" || last.Status != "fail" || !errors.Is(last.Err, boom) {
		t.Errorf("last check %+v, want the target failing with its error", last)
	}
}
