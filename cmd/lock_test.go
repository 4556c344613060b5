package cmd

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/store"
)

// lockCmd puts sub under `lock`, as NewRoot does, so args read as typed.
func lockCmd(sub *cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: "lock"}
	c.AddCommand(sub)
	return c
}

func TestLockStatusFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *LockStatusOptions) error) *cobra.Command {
		return lockCmd(newLockStatusCmd(flagFactory(), runF))
	}, []flagCase[LockStatusOptions]{
		{args: []string{"lock", "status"}, want: LockStatusOptions{}},
		{args: []string{"lock", "status", "--json"}, want: LockStatusOptions{JSON: true}},
		{args: []string{"lock", "status", "--yes"}, usage: "unknown flag: --yes"},
		{args: []string{"lock", "status", "api"}, usage: `oops lock status takes no arguments, got "api"`},
	})
}

func TestLockReleaseFlags(t *testing.T) {
	t.Parallel()
	checkFlags(t, func(runF func(context.Context, *LockReleaseOptions) error) *cobra.Command {
		return lockCmd(newLockReleaseCmd(flagFactory(), runF))
	}, []flagCase[LockReleaseOptions]{
		{args: []string{"lock", "release"}, want: LockReleaseOptions{}},
		{args: []string{"lock", "release", "--force", "-y", "-m", "ci runner killed"},
			want: LockReleaseOptions{Force: true, Yes: true, Reason: "ci runner killed"}},
		{args: []string{"lock", "release", "--dry-run", "--message=why"}, want: LockReleaseOptions{DryRun: true, Reason: "why"}},
		{args: []string{"lock", "release", "-m"}, usage: "flag needs an argument: 'm' in -m"},
		{args: []string{"lock", "release", "--json"}, usage: "unknown flag: --json"},
		{args: []string{"lock", "release", "api"}, usage: `oops lock release takes no arguments, got "api"`},
	})
}

// noEvents is a store that cannot write history events (the rest works).
type noEvents struct{ store.Store }

func (s noEvents) Create(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (store.Object, error) {
	if strings.HasPrefix(key, store.EventsPrefix("api")) {
		return store.Object{}, errors.New("events are read-only today")
	}
	return s.Store.Create(ctx, key, body, size, meta)
}

// TestLockReleaseSaysItBeforeHistoryTrouble pins the order on stderr: the
// lock is said released as soon as it is, then that its event could not
// be written (as before 16f4503 moved the sentence after the workflow).
func TestLockReleaseSaysItBeforeHistoryTrouble(t *testing.T) {
	t.Parallel()
	f, s, errOut := testFactory(t, "")
	f.store = noEvents{s}
	bob, err := store.AcquireLock(context.Background(), s, store.LockInfo{App: "api", Holder: "bob", Command: "oops deploy"}, store.LockOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bob.Release(context.Background()) }()
	if code := Main(f, []string{"lock", "release", "--force", "--yes"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	released := strings.Index(errOut.String(), "released the lock of api held by bob")
	unrecorded := strings.Index(errOut.String(), "oops: could not record this lock in history")
	if released < 0 || unrecorded < 0 || released > unrecorded {
		t.Errorf("stderr:\n%s\nwant the release said, then the history trouble", errOut)
	}
}
