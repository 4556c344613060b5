package local

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// TestProxySplitsTrafficPerRequest: a canary of 25% sends exactly 25 of
// every 100 requests (on one connection, kept alive) to the canary color,
// status and State say so, the canary color cannot be drained, and a
// switch back to the live color ends it.
func TestProxySplitsTrafficPerRequest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blue, green := colorServer(t, "blue", nil), colorServer(t, "green", nil)
	rp := startProxy(t, ProxyOptions{StateDir: dir, BluePort: blue, GreenPort: green})
	c := newAdminClient(dir)
	ctx := context.Background()
	count := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			res, err := http.Get(rp.url + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got[string(body)]++
		}
		return got
	}
	if _, err := c.switchTo(ctx, release.Green, "", 25); err != nil {
		t.Fatal(err)
	}
	if got := count(400); got["green"] != 100 || got["blue"] != 300 {
		t.Fatalf("400 requests with 25%% to green: %v", got)
	}
	st, err := c.status(ctx, false)
	if err != nil || st.Live != release.Blue || st.Canary != release.Green || st.CanaryWeight != 25 {
		t.Fatalf("status %+v, %v", st, err)
	}
	if _, err := c.drain(ctx, release.Green); !errors.Is(err, errConflict) {
		t.Fatalf("drain of the canary: %v, want refused", err)
	}
	if _, err := c.switchTo(ctx, release.Blue, release.Green, 25); err == nil {
		t.Fatal("a canary to the live color was accepted")
	}
	lt, err := New(Options{StateDir: dir, Listen: rp.url[len("http://"):], BluePort: blue, GreenPort: green})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := lt.State(ctx)
	if err != nil || ts.Base != release.Blue || ts.Live.Weight != 75 || ts.Off.Color != release.Green || ts.Off.Weight != 25 {
		t.Fatalf("State %+v, %v", ts, err)
	}
	// All back to blue, as oops rollback does during a canary.
	if _, err := target.Switch(ctx, lt, target.SwitchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := count(50); got["blue"] != 50 {
		t.Fatalf("after the canary: %v", got)
	}
	if st, _ := c.status(ctx, false); st.Canary != "" || st.Live != release.Blue {
		t.Fatalf("status after: %+v", st)
	}
}
