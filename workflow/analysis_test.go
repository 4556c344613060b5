package workflow

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// countingBoard is a board whose target counts requests per color: each
// read of green adds 100 requests, errs of them 5xx.
type countingBoard struct {
	*board
	errs  uint64
	reads uint64
}

func (c *countingBoard) Counts(_ context.Context, col release.Color) (*target.Counts, error) {
	n := c.reads
	c.reads++
	return &target.Counts{Requests: 100 * n, ServerErrors: c.errs * n, Bounds: []float64{1}, Buckets: []uint64{100 * n, 100 * n}}, nil
}

const bakeRC = `{"application-name": "api", "store": "rel", "bake": "1s", "analysis-interval": "100ms", "failure-limit": 2, "max-error-rate": "2%", "min-requests": 10}`

// TestBakeSwitchesBack: a bake whose measurements fail failure-limit
// times in a row switches back by itself (ErrVerifyFailed: exit 10), and
// history has every measurement and the verdict; a healthy one passes.
func TestBakeSwitchesBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		errs    uint64
		verdict string
	}{
		{"35% errors revert", 35, release.VerdictFail},
		{"1% errors pass", 1, release.VerdictPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, bakeRC)
			b := &countingBoard{board: newBoard(fx), errs: tc.errs}
			_, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Reason: "go", Confirm: yes})
			ev := history(t, fx)[0]
			if ev.Analysis == nil || ev.Analysis.Verdict != tc.verdict || len(ev.Analysis.Measurements) == 0 {
				t.Fatalf("history analysis %+v", ev.Analysis)
			}
			back := slices.Contains(b.calls, "apply blue 100")
			if tc.verdict == release.VerdictPass {
				if err != nil || back || ev.Result != release.ResultOK {
					t.Fatalf("%v, switched back %v; want the switch to stand", err, back)
				}
				return
			}
			if !errors.Is(err, target.ErrVerifyFailed) || !errors.Is(err, target.ErrAnalysisFailed) || !back {
				t.Fatalf("%v (calls %v); want switched back, ErrVerifyFailed", err, b.calls)
			}
			if len(ev.Analysis.Measurements) != 2 || ev.Analysis.Worst != "5xx 35.0% of 100, p99 990ms" || ev.Result != release.ResultFailed {
				t.Errorf("history %+v, analysis %+v", ev, ev.Analysis)
			}
		})
	}
}

// TestBakeFlagOverrides: --bake 0s turns off the bake of .oopsrc; a bake
// on a target that counts no requests is refused before anything changes.
func TestBakeFlagOverrides(t *testing.T) {
	t.Parallel()
	zero := time.Duration(0)
	fx := newFixture(t, bakeRC)
	b := newBoard(fx)
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes}); ResultOf(err) != release.ResultRefused || !strings.Contains(err.Error(), "counts no requests") {
		t.Fatalf("bake on a target without counts: %v", err)
	}
	if slices.Contains(b.calls, "apply green 100") {
		t.Fatal("switched anyway")
	}
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes, Bake: &zero}); err != nil {
		t.Fatalf("--bake 0s: %v", err)
	}
}

// TestBakeWithoutTraffic: no requests at all is inconclusive: the switch
// stands, with a warning and the verdict in history.
func TestBakeWithoutTraffic(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, bakeRC)
	b := &idleBoard{newBoard(fx)}
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes}); err != nil {
		t.Fatal(err)
	}
	if ev := history(t, fx)[0]; ev.Analysis == nil || ev.Analysis.Verdict != release.VerdictInconclusive {
		t.Fatalf("analysis %+v", ev.Analysis)
	}
	if !strings.Contains(fx.errOut.String(), "bake of green inconclusive") {
		t.Errorf("stderr:\n%s", fx.errOut)
	}
}

type idleBoard struct{ *board }

func (idleBoard) Counts(context.Context, release.Color) (*target.Counts, error) {
	return &target.Counts{Bounds: []float64{1}, Buckets: []uint64{0, 0}}, nil
}

// TestSmokeRefusesTheSwitch: a smoke command that exits non-zero refuses
// the switch (exit 6, like the health gate) with the end of its output,
// recorded; it ran against the color's address; --force skips it. The
// warm-up requests reach the color before the switch.
func TestSmokeRefusesTheSwitch(t *testing.T) {
	t.Parallel()
	var warm atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/warm" {
			warm.Add(1)
		}
	}))
	defer app.Close()
	for _, force := range []bool{false, true} {
		fx := newFixture(t, `{"application-name": "api", "store": "rel", "warm-up-paths": ["/warm"], "warm-up-requests": 3,
			"smoke": ["sh", "-c", "echo checking $OOPS_COLOR $OOPS_URL; echo login answered 500; exit 4"]}`)
		b := newBoard(fx)
		b.st.Kind = "local"
		b.st.Off.Port = app.Listener.Addr().(*net.TCPAddr).Port
		_, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes, Force: force})
		switched := slices.Contains(b.calls, "apply green 100")
		if force {
			if err != nil || !switched {
				t.Fatalf("--force: %v, switched %v", err, switched)
			}
			continue
		}
		if !errors.Is(err, target.ErrUnhealthy) || switched || !strings.Contains(err.Error(), "refused by smoke (sh): exit status 4") || !strings.Contains(err.Error(), "login answered 500") {
			t.Fatalf("%v, switched %v; want refused with the output", err, switched)
		}
		ev := history(t, fx)[0]
		runs := ev.HookRuns()
		want := "checking green http://127.0.0.1:" + strconv.Itoa(b.st.Off.Port) + "\nlogin answered 500"
		if ev.Result != release.ResultRefused || len(runs) == 0 || runs[0].Stage != StageSmoke || runs[0].Exit != 4 || runs[0].Tail != want {
			t.Errorf("history %+v, runs %+v", ev, runs)
		}
	}
	if warm.Load() != 0 {
		t.Errorf("warm-up sent %d requests: a refused smoke test comes first, --force skips both", warm.Load())
	}
}

// TestWarmUpBeforeTheSwitch: warm-up-requests to each of warm-up-paths
// reach the color before it takes traffic, and history counts them.
func TestWarmUpBeforeTheSwitch(t *testing.T) {
	t.Parallel()
	var warm atomic.Int64
	var b *board
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		warm.Add(1)
		if slices.Contains(b.calls, "apply green 100") {
			t.Errorf("warm-up request after the switch")
		}
		if r.URL.Path == "/b" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer app.Close()
	fx := newFixture(t, `{"application-name": "api", "store": "rel", "warm-up-paths": ["/a", "/b"], "warm-up-requests": 3, "smoke": ["true"]}`)
	b = newBoard(fx)
	b.st.Kind = "local"
	b.st.Off.Port = app.Listener.Addr().(*net.TCPAddr).Port
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes}); err != nil {
		t.Fatal(err)
	}
	ev := history(t, fx)[0]
	if warm.Load() != 6 || ev.Analysis == nil || *ev.Analysis.WarmUp != (release.WarmUp{Requests: 6, Failed: 3}) {
		t.Fatalf("%d requests, history %+v", warm.Load(), ev.Analysis)
	}
	if !strings.Contains(fx.errOut.String(), "warm-up of green: 3 of 6 requests failed") {
		t.Errorf("stderr:\n%s", fx.errOut)
	}
}

// cancelOnRead is a counting board that cancels the command (Ctrl-C) at
// its second reading, in the middle of the bake.
type cancelOnRead struct {
	*countingBoard
	cancel context.CancelFunc
}

func (c *cancelOnRead) Counts(ctx context.Context, col release.Color) (*target.Counts, error) {
	if c.reads == 1 {
		c.cancel()
	}
	return c.countingBoard.Counts(ctx, col)
}

// TestBakeInterrupted: Ctrl-C during the bake leaves traffic on the new
// color, says so, and records the measurements made, with no verdict.
func TestBakeInterrupted(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, bakeRC)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &cancelOnRead{countingBoard: &countingBoard{board: newBoard(fx), errs: 35}, cancel: cancel}
	_, err := fx.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes})
	if !errors.Is(err, target.ErrVerifyInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v: want interrupted", err)
	}
	if slices.Contains(b.calls, "apply blue 100") || !slices.Contains(b.calls, "apply green 100") {
		t.Fatalf("calls %v: want the switch to stand", b.calls)
	}
	if !strings.Contains(fx.errOut.String(), "bake interrupted: traffic stays on green, unjudged; oops rollback switches back") {
		t.Errorf("stderr:\n%s", fx.errOut)
	}
	if ev := history(t, fx)[0]; ev.Analysis == nil || ev.Analysis.Verdict != "" || ev.Analysis.Bake != "1s" {
		t.Errorf("history analysis %+v", ev.Analysis)
	}
}
