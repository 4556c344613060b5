package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/store/dir"
)

// TestGuardedKeepsLeftovers: oops fsck gets the fenced store; it must
// still find (and, under the lock only, remove) what interrupted writes
// left in it, as the bare store would.
func TestGuardedKeepsLeftovers(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	ctx := context.Background()
	raw := dir.New(root)
	// A first write makes the store's folders; then a stale temp file.
	if _, err := raw.Create(ctx, "app/x", strings.NewReader("x"), 1, nil); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, ".oops-store", "tmp", "obj-crashed")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	fenced := errors.New("fenced")
	lost := false
	g := store.Guarded(raw, func(context.Context) error {
		if lost {
			return fenced
		}
		return nil
	})
	lc, ok := g.(store.LeftoverCleaner)
	if !ok {
		t.Fatal("the guarded store hides the directory store's leftovers from fsck")
	}
	ls, err := lc.Leftovers(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(ls) != 1 || ls[0].Name != stale {
		t.Fatalf("leftovers %+v, %v; want %s", ls, err, stale)
	}
	lost = true
	if err := lc.RemoveLeftover(ctx, ls[0]); !errors.Is(err, fenced) {
		t.Errorf("remove after losing the lock: %v, want fenced", err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("a fenced remove removed it: %v", err)
	}
	lost = false
	if err := lc.RemoveLeftover(ctx, ls[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("still there after remove: %v", err)
	}
}
