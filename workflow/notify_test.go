package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// reconfigure gives the fixture another .oopsrc (same store).
func (fx *fixture) reconfigure(t *testing.T, rc string) {
	t.Helper()
	path := filepath.Join(fx.wd, ".oopsrc")
	if err := os.WriteFile(path, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fx.d.Config = func() (*config.Config, error) { return c, nil }
}

// receiver is a webhook on 127.0.0.1 that keeps what it was sent.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []release.Event
	bodies []string
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rcv := &receiver{}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev release.Event
		if err := json.Unmarshal(body, &ev); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("the webhook got %s %q (%s): %v", r.Method, body, r.Header.Get("Content-Type"), err)
		}
		rcv.mu.Lock()
		rcv.events = append(rcv.events, ev)
		rcv.bodies = append(rcv.bodies, string(body))
		rcv.mu.Unlock()
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

// take returns what the receiver got so far, and forgets it.
func (rcv *receiver) take() []release.Event {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	evs := rcv.events
	rcv.events, rcv.bodies = nil, nil
	return evs
}

func notifyRC(dests ...string) string {
	q := make([]string, len(dests))
	for i, d := range dests {
		q[i] = fmt.Sprintf("%q", d)
	}
	return `{"application-name": "api", "store": "rel", "notify": [` + strings.Join(q, ", ") + `]}`
}

// sameEvent compares what was sent with what history recorded.
func sameEvent(sent, recorded release.Event) bool {
	if !sent.Time.Equal(recorded.Time) {
		return false
	}
	sent.ID, recorded.ID, sent.Time, recorded.Time = "", "", time.Time{}, time.Time{}
	sent.NotifyFailed, recorded.NotifyFailed, sent.Hooks, recorded.Hooks = nil, nil, nil, nil
	return sent == recorded
}

// TestNotifyEveryEvent: a webhook gets each event history records, as
// recorded and with its reason: a deploy, a refused deploy, a rollback,
// an automatic revert, and a lock taken over from a dead holder.
func TestNotifyEveryEvent(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	ctx := context.Background()
	check := func(t *testing.T, fx *fixture, want ...func(release.Event) string) {
		t.Helper()
		sent, recorded := rcv.take(), history(t, fx)
		if len(sent) != len(want) || len(recorded) != len(want) {
			t.Fatalf("sent %d events, recorded %d; want %d each:\n%+v", len(sent), len(recorded), len(want), sent)
		}
		for i := range want {
			// history is newest first
			rec := recorded[len(recorded)-1-i]
			if !sameEvent(sent[i], rec) {
				t.Errorf("sent\n  %+v\nbut history has\n  %+v", sent[i], rec)
			}
			if msg := want[i](sent[i]); msg != "" {
				t.Errorf("event %d: %s: %+v", i, msg, sent[i])
			}
		}
	}
	is := func(action, result, reason string) func(release.Event) string {
		return func(ev release.Event) string {
			if ev.Action != action || ev.Result != result || ev.Reason != reason || ev.Who != "ada" {
				return fmt.Sprintf("want %s %s by ada, reason %q", action, result, reason)
			}
			return ""
		}
	}

	t.Run("deploy, and a refused one", func(t *testing.T) {
		w := newWorld(t)
		fx := deployFixture(t, w)
		fx.reconfigure(t, notifyRC(rcv.URL+"/hook"))
		if _, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc", Reason: "ship it"}); err != nil {
			t.Fatal(err)
		}
		markBad(t, fx, shaB)
		if _, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "bbbbbbb", Reason: "try again"}); !errors.Is(err, store.ErrBadRelease) {
			t.Fatalf("deploy of a BAD release: %v", err)
		}
		check(t, fx, is(release.ActionDeploy, release.ResultOK, "ship it"), is(release.ActionDeploy, release.ResultRefused, "try again"))
	})

	t.Run("rollback", func(t *testing.T) {
		fx := newFixture(t, notifyRC(rcv.URL))
		b := newBoard(fx)
		if _, err := fx.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Reason: "500s", Confirm: yes}); err != nil {
			t.Fatal(err)
		}
		check(t, fx, func(ev release.Event) string {
			if msg := is(release.ActionRollback, release.ResultOK, "500s")(ev); msg != "" {
				return msg
			}
			if ev.From.Commit != v2 || ev.To.Commit != v1 {
				return "want from v2 to v1"
			}
			return ""
		})
	})

	t.Run("automatic revert", func(t *testing.T) {
		fx := newFixture(t, notifyRC(rcv.URL))
		b := newBoard(fx)
		b.VerifyFunc = func(context.Context, release.Color, time.Duration) error {
			return errors.New("2 of 2 instances OutOfService")
		}
		_, err := fx.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Reason: "go", Verify: time.Second, Confirm: yes})
		if !errors.Is(err, target.ErrVerifyFailed) {
			t.Fatalf("switch that fails verification: %v", err)
		}
		check(t, fx, func(ev release.Event) string {
			if msg := is(release.ActionPromote, release.ResultFailed, "go")(ev); msg != "" {
				return msg
			}
			if !strings.Contains(ev.Error, "verification failed") || !strings.Contains(ev.Error, "traffic is back on blue") {
				return "want the error to say it was switched back"
			}
			return ""
		})
	})

	t.Run("lock takeover", func(t *testing.T) {
		fx := newFixture(t, notifyRC(rcv.URL))
		bob, err := store.AcquireLock(ctx, fx.st, store.LockInfo{App: "api", Holder: "bob", Command: "oops deploy"}, store.LockOptions{TTL: time.Hour, Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = bob.Release(context.Background()) }()
		// Two hours on, bob's lock is stale.
		fx.d.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		err = fx.runner().Locked(ctx, Change{Action: release.ActionRepair, Command: "oops repair", Reason: "fix"}, func(context.Context, *release.Event) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		sent := rcv.take()
		if len(sent) != 2 {
			t.Fatalf("sent %+v, want the takeover and the repair", sent)
		}
		var takeover, repair bool
		for _, ev := range sent {
			takeover = takeover || ev.Action == release.ActionLock && strings.Contains(ev.Reason, "took over the lock from bob")
			repair = repair || ev.Action == release.ActionRepair && ev.Reason == "fix"
		}
		if !takeover || !repair {
			t.Errorf("sent %+v, want the takeover from bob and the repair", sent)
		}
	})
}

// deadline is an http.RoundTripper that notes the deadline of each
// request's context, then sends it on.
type deadline struct {
	mu    sync.Mutex
	left  []time.Duration // time left before the deadline when it was sent; -1: none
	next  http.RoundTripper
	reach string // every request goes to this host:port (the test's server)
}

func (d *deadline) RoundTrip(req *http.Request) (*http.Response, error) {
	left := time.Duration(-1)
	if dl, ok := req.Context().Deadline(); ok {
		left = time.Until(dl)
	}
	d.mu.Lock()
	d.left = append(d.left, left)
	d.mu.Unlock()
	if d.reach != "" {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = "http", d.reach
	}
	return d.next.RoundTrip(req)
}

// deadReceiver accepts connections and never answers.
func deadReceiver(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
}

// TestNotifyDeadReceiverNeverHoldsARollback: a webhook that accepts and
// never answers gets a try and a retry, both within notify-timeout (each
// request carries a deadline no further); the rollback succeeds, warns,
// and history records who was not told. A receiver that answers is told
// all the same.
func TestNotifyDeadReceiverNeverHoldsARollback(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	addr, accepted := deadReceiver(t)
	rcv := newReceiver(t)
	fx := newFixture(t, `{"application-name": "api", "store": "rel", "notify-timeout": "400ms", "notify": ["http://`+addr+`/dead?token=s3cret", "`+rcv.URL+`"]}`)
	dl := &deadline{next: http.DefaultTransport}
	fx.d.HTTP = &http.Client{Transport: dl}
	b := newBoard(fx)
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Reason: "500s", Confirm: yes}); err != nil {
		t.Fatalf("rollback with a dead webhook: %v", err)
	}
	if b.st.Live.Color != release.Green {
		t.Errorf("live is %s, want green", b.st.Live.Color)
	}
	if got := accepted(); got != 2 {
		t.Errorf("the dead webhook got %d connections, want a try and one retry", got)
	}
	dl.mu.Lock()
	for _, left := range dl.left {
		if left < 0 || left > timeout {
			t.Errorf("a notification was sent with %v before its deadline, want at most notify-timeout %s", left, timeout)
		}
	}
	dl.mu.Unlock()
	if got := rcv.take(); len(got) != 1 || got[0].Action != release.ActionRollback {
		t.Errorf("the live webhook got %+v, want the rollback", got)
	}
	evs := history(t, fx)
	if len(evs) != 1 || evs[0].NotifyFailed == nil || len(*evs[0].NotifyFailed) != 1 || !strings.Contains((*evs[0].NotifyFailed)[0], addr) {
		t.Fatalf("history: %+v; want the rollback, the dead webhook named as not told", evs)
	}
	if strings.Contains((*evs[0].NotifyFailed)[0], "s3cret") || strings.Contains(fx.errOut.String(), "s3cret") {
		t.Errorf("the webhook's secret is in history or on stderr: %v\n%s", *evs[0].NotifyFailed, fx.errOut)
	}
	if !strings.Contains(fx.errOut.String(), "could not notify http://"+addr+"/... of this rollback: no answer within 400ms") {
		t.Errorf("stderr:\n%s\nwant a warning naming the dead webhook", fx.errOut)
	}
}

// TestNotifySlack: a Slack incoming webhook gets {"text": ...}, a line
// that says what happened, to what, by whom and why. (The request never
// leaves 127.0.0.1: the transport sends it to the test's server.)
func TestNotifySlack(t *testing.T) {
	t.Parallel()
	var got struct {
		mu   sync.Mutex
		path string
		body map[string]any
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.mu.Lock()
		defer got.mu.Unlock()
		got.path = r.URL.Path
		_ = json.NewDecoder(r.Body).Decode(&got.body)
	}))
	defer srv.Close()
	fx := newFixture(t, notifyRC("https://hooks.slack.com/services/T0/B0/secret"))
	u, _ := url.Parse(srv.URL)
	fx.d.HTTP = &http.Client{Transport: &deadline{next: http.DefaultTransport, reach: u.Host}}
	b := newBoard(fx)
	if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Reason: "500s <!channel> & <https://evil.example|docs>", Confirm: yes}); err != nil {
		t.Fatal(err)
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	// Slack reads <...> as mentions and links: a reason must not ping
	// the channel nor pass a link off as something else.
	want := "oops rollback of api by ada on lb api: blue (2222222) -&gt; green (1111111): OK; 2222222 is marked BAD; reason: 500s &lt;!channel&gt; &amp; &lt;https://evil.example|docs&gt;"
	if got.path != "/services/T0/B0/secret" || len(got.body) != 1 || got.body["text"] != want {
		t.Errorf("Slack got %s %v\nwant {\"text\": %q}", got.path, got.body, want)
	}
}

// TestNotifyNotDeliveredIsSaid: a webhook that did not take the event is
// warned about and recorded, and its secret (in the query or in the path,
// as Discord, Mattermost and Teams keep it) is in neither the warning nor
// history. A redirect is not followed: a POST redirected turns into a GET
// without the event (or re-sends it elsewhere), and its 200 would count as
// delivered.
func TestNotifyNotDeliveredIsSaid(t *testing.T) {
	t.Parallel()
	var gets sync.Map
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Store(r.Method+" "+r.URL.Path, true) // answers 200 to anything
	}))
	defer elsewhere.Close()
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/landing", http.StatusFound)
	}))
	defer moved.Close()
	plain := strings.TrimPrefix(elsewhere.URL, "http://")
	tests := []struct {
		name, dest, shown string
	}{
		{"redirected", moved.URL + "/api/webhooks/123/s3cret", moved.URL + "/..."},
		// https to a plain http server: an error that is not a network one.
		{"not https", "https://" + plain + "/hook?token=s3cret", "https://" + plain + "/..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, `{"application-name": "api", "store": "rel", "notify-timeout": "2s", "notify": ["`+tt.dest+`"]}`)
			b := newBoard(fx)
			if _, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Confirm: yes}); err != nil {
				t.Fatal(err)
			}
			evs := history(t, fx)
			if len(evs) != 1 || evs[0].NotifyFailed == nil || len(*evs[0].NotifyFailed) != 1 || (*evs[0].NotifyFailed)[0] != tt.shown {
				t.Fatalf("history %+v, want %s recorded as not told", evs, tt.shown)
			}
			if !strings.Contains(fx.errOut.String(), "could not notify "+tt.shown+" of this rollback") {
				t.Errorf("stderr:\n%s\nwant a warning", fx.errOut)
			}
			if strings.Contains(fx.errOut.String(), "s3cret") {
				t.Errorf("the webhook's secret is on stderr:\n%s", fx.errOut)
			}
		})
	}
	if _, ok := gets.Load("GET /landing"); ok {
		t.Error("the redirect was followed")
	}
}
