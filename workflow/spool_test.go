package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

func TestSpoolDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"XDG_STATE_HOME", map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/home/ada"}, "/x/state/oops/spool"},
		{"relative XDG_STATE_HOME is ignored", map[string]string{"XDG_STATE_HOME": "state", "HOME": "/home/ada"}, "/home/ada/.local/state/oops/spool"},
		{"HOME", map[string]string{"HOME": "/home/ada"}, "/home/ada/.local/state/oops/spool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New(Deps{Getenv: func(k string) string { return tt.env[k] }})
			got, err := r.spoolDir()
			if err != nil || got != filepath.FromSlash(tt.want) {
				t.Errorf("spoolDir() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestSpoolKeepsAndFlushes: a spooled event is private to the user, and
// is appended once, with its marks, to its own store and application only.
func TestSpoolKeepsAndFlushes(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	f, s, errOut := fx.runner(), fx.st, fx.errOut
	ctx := context.Background()
	home := fx.env["HOME"]
	bad := strings.Repeat("b", 40)
	ev := &release.Event{App: "api", Action: release.ActionRollback, Result: release.ResultOK, Time: time.Now(),
		From: release.Side{Color: release.Blue, Commit: bad}, To: release.Side{Color: release.Green, Commit: strings.Repeat("a", 40)}}
	path, err := f.spoolEvent(s, ev)
	if err != nil {
		t.Fatal(err)
	}
	other := *ev
	other.ID, other.App = "", "web"
	if _, err := f.spoolEvent(s, &other); err != nil {
		t.Fatal(err)
	}
	elsewhere := dir.New(t.TempDir())
	if _, err := f.spoolEvent(elsewhere, &release.Event{App: "api", Action: release.ActionRollback, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		filepath.Join(home, ".local/state/oops"):       0o700,
		filepath.Join(home, ".local/state/oops/spool"): 0o700,
		path: 0o600,
	} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %o", p, fi.Mode(), err, want)
		}
	}
	if m := f.Marks(ctx, s, "api"); m.CheckBad(bad) != nil {
		t.Error("a spooled event counted while the store can be read")
	}

	for range 2 {
		f.FlushSpool(ctx, s)
	}
	evs, err := store.ListEvents(ctx, s, "api", store.EventQuery{})
	if err != nil || len(evs) != 1 || evs[0].ID != ev.ID {
		t.Fatalf("history %+v, %v: want the spooled event once", evs, err)
	}
	if m, _ := store.LoadMarks(ctx, s, "api"); m.CheckBad(bad) == nil {
		t.Error("the spooled rollback did not mark the release it left BAD")
	}
	if strings.Count(errOut.String(), "appended 1 event recorded while") != 1 {
		t.Errorf("stderr %q: want it said once", errOut)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still spooled: %v", path, err)
	}
	left, _ := os.ReadDir(filepath.Dir(path))
	if len(left) != 2 {
		t.Errorf("%d spooled, want the other application's and the other store's left alone", len(left))
	}
}

// TestMarksWhenStoreIsDown: with the store known to be unreachable, BAD
// marks come from this machine's spool, with a warning, and the store is
// not asked.
func TestMarksWhenStoreIsDown(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, "")
	f, s, errOut := fx.runner(), fx.st, fx.errOut
	bad := strings.Repeat("b", 40)
	if _, err := f.spoolEvent(s, &release.Event{App: "api", Action: release.ActionRollback, Result: release.ResultOK, Time: time.Now(),
		From: release.Side{Commit: bad}, To: release.Side{Commit: strings.Repeat("a", 40)}}); err != nil {
		t.Fatal(err)
	}
	f.storeDown = errors.New("connection refused")
	if m := f.Marks(context.Background(), s, "api"); m.CheckBad(bad) == nil {
		t.Error("the spooled rollback's BAD mark was not seen")
	}
	f.Marks(context.Background(), s, "api")
	if n := strings.Count(errOut.String(), "cannot check the release marks"); n != 1 {
		t.Errorf("warned %d times, want once: %q", n, errOut)
	}
}

func TestBrief(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("take lock: %w", &smithy.GenericAPIError{Code: "NoSuchBucket", Message: "The specified bucket does not exist"}), "NoSuchBucket: The specified bucket does not exist"},
		{fmt.Errorf("take lock: %w", &smithy.GenericAPIError{Code: "AccessDenied"}), "AccessDenied"},
		{fmt.Errorf("take lock: put: %w", io.EOF), "the connection was closed without an answer"},
		{errors.New("create x: mkdir /mnt/oops: not a directory"), "create x: mkdir /mnt/oops: not a directory"},
	}
	for _, tt := range tests {
		if got := Brief(tt.err); got != tt.want {
			t.Errorf("Brief(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
