package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
)

func TestMarksApplyEvent(t *testing.T) {
	t.Parallel()
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		start   store.Marks
		ev      release.Event
		wantBad map[string]string // sha -> reason; absent: not bad
		live    string
		deploy  string
	}{
		{
			name:    "rollback marks the release it leaves BAD",
			ev:      release.Event{Action: release.ActionRollback, Result: release.ResultOK, From: release.Side{Commit: a}, To: release.Side{Commit: b}, Reason: "500s"},
			wantBad: map[string]string{a: "500s"},
			live:    b,
		},
		{
			name:    "rollback without a reason still says why",
			ev:      release.Event{Action: release.ActionRollback, Result: release.ResultOK, From: release.Side{Commit: a}, To: release.Side{Commit: b}},
			wantBad: map[string]string{a: "rolled back from"},
			live:    b,
		},
		{
			name:  "a rollback that switched nothing (nothing to repair) marks nothing",
			ev:    release.Event{Action: release.ActionRollback, Result: release.ResultOK, From: release.Side{Commit: a, Color: release.Blue}},
			start: store.Marks{},
		},
		{
			name:    "a rollback onto a color whose commit is unknown still marks the one it left",
			ev:      release.Event{Action: release.ActionRollback, Result: release.ResultOK, From: release.Side{Commit: a, Color: release.Blue}, To: release.Side{Color: release.Green}},
			wantBad: map[string]string{a: "rolled back from"},
		},
		{
			name:  "refused rollback marks nothing",
			ev:    release.Event{Action: release.ActionRollback, Result: release.ResultRefused, From: release.Side{Commit: a}, To: release.Side{Commit: b}},
			start: store.Marks{},
		},
		{
			name:   "deploying a BAD release (forced) clears the mark",
			start:  store.Marks{a: {Bad: true, BadReason: "500s"}},
			ev:     release.Event{Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Commit: a, Color: release.Green}},
			live:   a,
			deploy: a,
		},
		{
			name:    "a (forced) rollback onto a BAD release clears it and marks the one it left",
			start:   store.Marks{b: {Bad: true, BadReason: "500s"}},
			ev:      release.Event{Action: release.ActionRollback, Result: release.ResultOK, From: release.Side{Commit: a}, To: release.Side{Commit: b}, Reason: "worse"},
			wantBad: map[string]string{a: "worse"},
			live:    b,
		},
		{
			name:    "a switch keeps other marks",
			start:   store.Marks{a: {Bad: true, BadReason: "500s"}},
			ev:      release.Event{Action: release.ActionSwitch, Result: release.ResultOK, To: release.Side{Commit: b}},
			wantBad: map[string]string{a: "500s"},
			live:    b,
		},
		{
			name:    "deploy --no-switch installs (warm) but is not live, and a BAD mark stays",
			start:   store.Marks{a: {Bad: true, BadReason: "500s"}},
			ev:      release.Event{Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Commit: a, Color: release.Green}, NoSwitch: true},
			wantBad: map[string]string{a: "500s"},
			deploy:  a,
		},
		{
			name: "a publish is not a deploy",
			ev:   release.Event{Action: release.ActionPublish, Result: release.ResultOK, To: release.Side{Commit: a}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := store.Marks{}
			for k, v := range tt.start {
				m[k] = v
			}
			ev := tt.ev
			ev.Time, ev.Who = at, "alice"
			m.ApplyEvent(&ev)
			for _, sha := range []string{a, b} {
				reason, bad := tt.wantBad[sha]
				if m[sha].Bad != bad || m[sha].BadReason != reason {
					t.Errorf("%s: bad=%v reason=%q, want bad=%v reason=%q", release.Short(sha), m[sha].Bad, m[sha].BadReason, bad, reason)
				}
				if gotLive := m[sha].LiveAt.Equal(at); gotLive != (sha == tt.live) {
					t.Errorf("%s: live at %v, want live=%v", release.Short(sha), m[sha].LiveAt, sha == tt.live)
				}
				if gotDep := m[sha].DeployedBy == "alice"; gotDep != (sha == tt.deploy) {
					t.Errorf("%s: deployed by %q, want deployed=%v", release.Short(sha), m[sha].DeployedBy, sha == tt.deploy)
				}
			}
		})
	}
}

// TestListEventsBoundedReads: a page of history costs one listing and one
// read per event shown, however long the history is.
func TestListEventsBoundedReads(t *testing.T) {
	t.Parallel()
	s := newMem()
	ctx := context.Background()
	base := time.Now()
	for i := range 500 {
		if err := store.AppendEvent(ctx, s, &release.Event{App: "app", Time: base.Add(time.Duration(i) * time.Millisecond), Action: "switch", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := store.ListEvents(ctx, s, "app", store.EventQuery{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("got %d events, want 20", len(got))
	}
	if !got[0].Time.After(got[19].Time) {
		t.Fatalf("not newest first: %v .. %v", got[0].Time, got[19].Time)
	}
	if l, g := s.count("list"), s.count("get"); l != 1 || g != 20 {
		t.Fatalf("history of 20 cost %d listings and %d reads, want 1 and 20", l, g)
	}
}

func TestLockedErrorSaysWhoWhatSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 1, 12, 5, 0, 0, time.UTC)
	err := &store.LockedError{Now: now, Info: store.LockInfo{App: "api", Holder: "arn:aws:iam::1:user/alice", OSUser: "alice", Host: "web1", PID: 42, Command: "oops deploy abc1234", Started: now.Add(-2 * time.Minute), Heartbeat: now.Add(-3 * time.Second)}}
	msg := err.Error()
	for _, want := range []string{"api is locked", "arn:aws:iam::1:user/alice", "alice@web1", "pid 42", `"oops deploy abc1234"`, "2m0s ago", "3s ago"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not mention %q", msg, want)
		}
	}
}
