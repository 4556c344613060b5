package local

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// TestProxyRefusesALowerGeneration: the proxy obeys the lock's fencing
// token: once it applied a switch or drain of generation N, one of a lower
// generation (a holder that lost the lock since) is refused and changes
// nothing, also after a restart; no generation (0) is not checked.
func TestProxyRefusesALowerGeneration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := ProxyOptions{StateDir: dir, BluePort: colorServer(t, "blue", nil), GreenPort: colorServer(t, "green", nil)}
	rp := startProxy(t, opts)

	if _, err := rp.p.SwitchFenced(release.Green, release.Blue, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.p.SwitchFenced(release.Blue, release.Green, 9); !errors.Is(err, target.ErrFenced) {
		t.Fatalf("switch of generation 9 after 10: %v, want ErrFenced", err)
	}
	if _, err := rp.p.DrainFenced(context.Background(), release.Blue, 9); !errors.Is(err, target.ErrFenced) {
		t.Fatalf("drain of generation 9 after 10: %v, want ErrFenced", err)
	}
	if body, _ := get(t, nil, rp.url); body != "green" {
		t.Fatalf("after a refused switch: %q, want green still", body)
	}
	// The same holder switches again; a newer one too.
	if _, err := rp.p.SwitchFenced(release.Blue, release.Green, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.p.SwitchFenced(release.Green, release.Blue, 11); err != nil {
		t.Fatal(err)
	}

	// A drain by a newer holder raises the generation too, across a restart.
	if _, err := rp.p.DrainFenced(context.Background(), release.Blue, 12); err != nil {
		t.Fatal(err)
	}

	rp.stop(t)
	rp2 := startProxy(t, opts)
	if _, err := rp2.p.SwitchFenced(release.Blue, release.Green, 11); !errors.Is(err, target.ErrFenced) {
		t.Fatalf("after a restart, generation 11 after a drain of 12: %v, want ErrFenced", err)
	}
	if _, err := rp2.p.Switch(release.Blue, release.Green); err != nil {
		t.Fatalf("a switch with no generation: %v", err)
	}
	if body, _ := get(t, nil, rp2.url); body != "blue" {
		t.Fatalf("after the unfenced switch: %q, want blue", body)
	}
}

// TestColorRecordOfAnOlderGenerationIsNeverRead: a holder that lost the lock
// and writes anyway (it passed its lease check just before a stall) leaves
// a record nobody reads, and the newer holder's record stands.
func TestColorRecordOfAnOlderGenerationIsNeverRead(t *testing.T) {
	t.Parallel()
	tg, err := New(Options{App: "app", StateDir: t.TempDir(), Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := tg.opts.StateDir
	newer := target.WithFence(context.Background(), fixedFence(6))
	if err := tg.saveColor(newer, colorState{Color: release.Green, Commit: "bbbb", Status: procRunning}); err != nil {
		t.Fatal(err)
	}
	// The stale holder's write, as it lands after its lease check passed.
	if err := writeColor(dir, colorState{Color: release.Green, Commit: "aaaa", Status: procStopped, Generation: 5}); err != nil {
		t.Fatal(err)
	}
	got, err := readColor(dir, release.Green, 8082)
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != "bbbb" || got.Generation != 6 {
		t.Fatalf("green reads as %+v, want the generation 6 record", got)
	}
	// Through saveColor the stale holder is refused outright.
	older := target.WithFence(context.Background(), fixedFence(5))
	if err := tg.saveColor(older, colorState{Color: release.Green, Commit: "aaaa"}); !errors.Is(err, target.ErrFenced) {
		t.Fatalf("save by generation 5 after 6: %v, want ErrFenced", err)
	}
	// fsck finds the superseded record.
	left, err := tg.Leftovers(time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 {
		t.Fatalf("leftovers %+v, want the superseded generation 5 record", left)
	}
}

type fixedFence int64

func (f fixedFence) Check(context.Context) error { return nil }
func (f fixedFence) Generation() int64           { return int64(f) }
