package workflow

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// as is another operator's Runner on fx's store and .oopsrc.
func as(t *testing.T, fx *fixture, who string) *Runner {
	t.Helper()
	other := newFixture(t, "")
	d := fx.d
	d.Who = func() (string, string) { return who, "laptop" }
	d.Report = writerReporter{other.errOut}
	return New(d)
}

const approvalRC = `{"application-name": "api", "store": "rel", "require-approval": true}`

// TestApprovalFourEyes: with require-approval a deploy installs and stops
// before the switch (ErrAwaitingApproval, recorded as an install); the
// deployer's own approval is refused, someone else's recorded; then the
// deploy switches at once, and the approval is used up.
func TestApprovalFourEyes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	fx := deployFixture(t, w)
	fx.reconfigure(t, approvalRC)

	out, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc", Reason: "checkout v2"})
	if !errors.Is(err, ErrAwaitingApproval) || !strings.Contains(hintOf(err), "oops approve ccccccc") {
		t.Fatalf("deploy: %v (hint %q), want awaiting approval", err, hintOf(err))
	}
	if w.liveCommit() != shaA || w.state().Off.Commit != shaC {
		t.Fatalf("live %s, off %s; want aaaaaaa live and ccccccc installed on green", release.Short(w.liveCommit()), release.Short(w.state().Off.Commit))
	}
	if out == nil || out.Approval == nil || out.Approval.RequestedBy != "ada" || out.Approval.Approved() {
		t.Fatalf("outcome %+v, want ada's request", out)
	}
	ev := history(t, fx)[0]
	if ev.Action != release.ActionDeploy || ev.Result != release.ResultOK || !ev.NoSwitch || !strings.Contains(ev.Error, "awaiting approval") {
		t.Errorf("history %+v, want the install recorded, awaiting approval", ev)
	}
	pending, err := fx.runner().Approvals(ctx)
	if err != nil || len(pending) != 1 || pending[0].Commit != shaC || pending[0].Color != release.Green || pending[0].Reason != "checkout v2" {
		t.Fatalf("approvals %+v, %v", pending, err)
	}

	// Deploying it again, still unapproved, stops again.
	if _, err := New(fx.d).Deploy(ctx, DeployRequest{Rev: "ccccccc"}); !errors.Is(err, ErrAwaitingApproval) {
		t.Fatalf("second deploy before approval: %v", err)
	}
	// Nor can a shift go around it.
	if _, err := New(fx.d).Switch(ctx, w.target(), SwitchRequest{Action: release.ActionShift, Command: "oops shift", Weight: 10, Confirm: yes}); !errors.Is(err, ErrAwaitingApproval) {
		t.Fatalf("shift to the release awaiting approval: %v", err)
	}

	// The deployer's own approval is refused, and recorded so.
	_, err = New(fx.d).Approve(ctx, ApproveRequest{Rev: "ccccccc", Message: "lgtm"})
	var ue UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "ada deployed ccccccc and cannot approve it too") {
		t.Fatalf("self-approval: %v", err)
	}
	if ev := history(t, fx)[0]; ev.Action != release.ActionApprove || ev.Result != release.ResultRefused || ev.Who != "ada" {
		t.Errorf("history %+v, want ada's approval refused", ev)
	}

	// Someone else's is recorded.
	got, err := as(t, fx, "grace").Approve(ctx, ApproveRequest{Rev: "ccccccc", Message: "lgtm"})
	if err != nil || got.Approval.ApprovedBy != "grace" || got.Approval.Message != "lgtm" {
		t.Fatalf("grace's approval: %+v, %v", got, err)
	}
	if ev := history(t, fx)[0]; ev.Action != release.ActionApprove || ev.Result != release.ResultOK || ev.Who != "grace" || ev.To.Commit != shaC || ev.Reason != "lgtm" {
		t.Errorf("history %+v, want grace's approval", ev)
	}

	// Now the deploy switches at once (green runs it: nothing reinstalled).
	w.changes = nil
	out, err = New(fx.d).Deploy(ctx, DeployRequest{Rev: "ccccccc"})
	if err != nil || out.Switch == nil || w.liveCommit() != shaC {
		t.Fatalf("deploy after approval: %v; live %s", err, release.Short(w.liveCommit()))
	}
	if strings.Join(w.changes, "; ") != "switch to green" {
		t.Errorf("changes %v, want the switch only", w.changes)
	}
	if pending, _ := fx.runner().Approvals(ctx); len(pending) != 0 {
		t.Errorf("approvals left: %+v, want it used up", pending)
	}
}

// TestApprovalApprovers: with approvers set, only they approve; a commit
// nobody asked approval for is said so; without require-approval there is
// nothing to approve.
func TestApprovalApprovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	fx := deployFixture(t, w)
	fx.reconfigure(t, `{"application-name": "api", "store": "rel", "require-approval": true, "approvers": ["arn:aws:sts::1:assumed-role/Release/*", "grace"]}`)
	if _, err := as(t, fx, "grace").Approve(ctx, ApproveRequest{Rev: "ccccccc"}); err == nil || !strings.Contains(err.Error(), "no deploy of ccccccc awaits approval") {
		t.Fatalf("approve with nothing asked: %v", err)
	}
	if _, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc"}); !errors.Is(err, ErrAwaitingApproval) {
		t.Fatal(err)
	}
	if _, err := as(t, fx, "bob").Approve(ctx, ApproveRequest{Rev: "ccccccc"}); err == nil || !strings.Contains(err.Error(), "bob is not one of the approvers") {
		t.Fatalf("bob's approval: %v", err)
	}
	if _, err := as(t, fx, "arn:aws:sts::1:assumed-role/Release/bob").Approve(ctx, ApproveRequest{Rev: "ccccccc", DryRun: true}); err != nil {
		t.Fatalf("an approver's dry run: %v", err)
	}
	if a, _ := fx.runner().Approvals(ctx); len(a) != 1 || a[0].Approved() {
		t.Fatalf("after a dry run: %+v, want still waiting", a)
	}

	fx.reconfigure(t, `{"application-name": "api", "store": "rel"}`)
	if _, err := as(t, fx, "grace").Approve(ctx, ApproveRequest{Rev: "ccccccc"}); err == nil || !strings.Contains(err.Error(), "does not set require-approval") {
		t.Fatalf("approve without require-approval: %v", err)
	}
}

// TestApprovalNeverForARollback: oops rollback and rollback --to switch
// without any approval.
func TestApprovalNeverForARollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	fx := deployFixture(t, w)
	fx.reconfigure(t, approvalRC)
	wasLive(t, fx, shaC)
	if _, err := fx.runner().RollbackTo(ctx, DeployRequest{Rev: "ccccccc", Reason: "back"}); err != nil || w.liveCommit() != shaC {
		t.Fatalf("rollback --to: %v, live %s", err, release.Short(w.liveCommit()))
	}
	fx2 := newFixture(t, approvalRC)
	b := newBoard(fx2)
	if _, err := fx2.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Confirm: yes}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if b.st.Live.Color != release.Green {
		t.Error("not rolled back")
	}
}

// TestApprovalIdentityFromAWS: on AWS the approver is the caller ARN. When
// STS cannot tell (its endpoint broken, on purpose or not), the git
// user.name anyone can set must not stand in for it: that would let the
// deployer approve as "grace". And a request recorded while STS could not
// tell (as the OS user) is not approved by the same person once it can.
func TestApprovalIdentityFromAWS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const rc = `{"application-name": "api", "store": "s3://bucket", "require-approval": true, "approvers": ["grace", "arn:aws:sts::1:assumed-role/Release/*"]}`
	tests := []struct {
		name            string
		deployer        string // the deployer's caller ARN, "" when STS failed
		approver        string // the approver's
		approverGitName string
		want            string // in the refusal; "" accepted
	}{
		{"git name instead of a failed STS", "arn:aws:sts::1:assumed-role/Release/ada", "", "grace", "could not tell who you are"},
		{"the same ARN in other case", "arn:aws:sts::1:assumed-role/Release/ada", "arn:aws:sts::1:assumed-role/Release/Ada", "", "cannot approve it too"},
		{"someone else", "arn:aws:sts::1:assumed-role/Release/ada", "arn:aws:sts::1:assumed-role/Release/grace", "", ""},
	}
	t.Run("deployed while STS failed", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		fx := deployFixture(t, w)
		fx.reconfigure(t, rc)
		fx.d.Caller = func(context.Context) string { return "" }
		_, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc"})
		if err == nil || !strings.Contains(err.Error(), "could not tell who you are") {
			t.Fatalf("deploy: %v, want refused: the request needs the deployer's ARN", err)
		}
		if w.state().Off.Commit == shaC {
			t.Error("installed all the same")
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			fx := deployFixture(t, w)
			fx.reconfigure(t, rc)
			fx.d.Caller = func(context.Context) string { return tt.deployer }
			if _, err := New(fx.d).Deploy(ctx, DeployRequest{Rev: "ccccccc"}); !errors.Is(err, ErrAwaitingApproval) {
				t.Fatal(err)
			}
			d := fx.d
			d.Caller = func(context.Context) string { return tt.approver }
			if tt.approverGitName != "" {
				home := t.TempDir()
				if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\tname = "+tt.approverGitName+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				d.Getenv = func(k string) string {
					if k == "HOME" {
						return home
					}
					return fx.env[k]
				}
			}
			_, err := New(d).Approve(ctx, ApproveRequest{Rev: "ccccccc", Message: "lgtm"})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("approval: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("approval: %v, want refused: %q", err, tt.want)
			}
			if a, _ := fx.runner().Approvals(ctx); len(a) != 1 || a[0].Approved() != (tt.want == "") {
				t.Errorf("approvals %+v", a)
			}
		})
	}
}

// TestApprovalNoWaitThenShift: deploy --no-wait leaves CodeDeploy to
// install the release, marked installing on the off color; with
// require-approval it records the request first, so oops shift and oops
// promote cannot send traffic to the unapproved release once it is there.
func TestApprovalNoWaitThenShift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	w.deployID = "d-42"
	fx := deployFixture(t, w)
	fx.reconfigure(t, approvalRC)
	fx.d.UsesCodeDeploy = func() bool { return true }
	if _, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc", NoWait: true}); err != nil {
		t.Fatalf("deploy --no-wait: %v", err)
	}
	if st := w.state(); st.Off.Commit != shaC {
		t.Fatalf("off runs %s, want ccccccc (installing)", release.Short(st.Off.Commit))
	}
	for _, action := range []string{release.ActionShift, release.ActionPromote} {
		if _, err := New(fx.d).Switch(ctx, w.target(), SwitchRequest{Action: action, Command: "oops " + action, Weight: 100, Confirm: yes, Force: true}); !errors.Is(err, ErrAwaitingApproval) {
			t.Errorf("%s to the release deploy --no-wait installs: %v, want awaiting approval", action, err)
		}
	}
	if w.liveCommit() != shaA {
		t.Errorf("live %s, want aaaaaaa still", release.Short(w.liveCommit()))
	}
	if a, _ := fx.runner().Approvals(ctx); len(a) != 1 || a[0].Commit != shaC || a[0].Approved() {
		t.Errorf("approvals %+v, want the request for ccccccc", a)
	}
}

// TestApprovalRollbackOntoTheAwaitingRelease: once a deploy awaits
// approval, the off color runs that release, not the one to go back to. A
// plain oops rollback would put the unapproved release live: it is
// refused, pointing at rollback --to; --force goes ahead.
func TestApprovalRollbackOntoTheAwaitingRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	fx := deployFixture(t, w)
	fx.reconfigure(t, approvalRC)
	if _, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc"}); !errors.Is(err, ErrAwaitingApproval) {
		t.Fatal(err)
	}
	_, err := New(fx.d).Switch(ctx, w.target(), SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Confirm: yes})
	if !errors.Is(err, ErrAwaitingApproval) || !strings.Contains(hintOf(err), "oops rollback --to") {
		t.Fatalf("rollback onto the release awaiting approval: %v (hint %q)", err, hintOf(err))
	}
	if w.liveCommit() != shaA {
		t.Fatalf("live %s, want aaaaaaa", release.Short(w.liveCommit()))
	}
	if _, err := New(fx.d).Switch(ctx, w.target(), SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Confirm: yes, Force: true}); err != nil || w.liveCommit() != shaC {
		t.Fatalf("rollback --force: %v, live %s", err, release.Short(w.liveCommit()))
	}
}

// TestApprovalDeployStoppedBeforeTheGate: a deploy that installed the
// release and then stopped before the approval gate (a post-install hook
// refused it) leaves it on the off color all the same: the request is
// recorded before the install, so neither a shift nor a plain rollback
// sends traffic to the unapproved release.
func TestApprovalDeployStoppedBeforeTheGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t)
	fx := deployFixture(t, w)
	withFakeHooks(t, fx, map[string]int{StagePostInstall: 1})
	fx.reconfigure(t, strings.Replace(everyHook(), `"store": "rel",`, `"store": "rel", "require-approval": true,`, 1))
	if _, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc"}); err == nil || !strings.Contains(err.Error(), "refused by hook post-install") {
		t.Fatalf("deploy: %v, want refused by the post-install hook", err)
	}
	if st := w.state(); st.Off.Commit != shaC {
		t.Fatalf("off runs %s, want ccccccc installed", release.Short(st.Off.Commit))
	}
	if _, err := New(fx.d).Switch(ctx, w.target(), SwitchRequest{Action: release.ActionShift, Command: "oops shift", Weight: 100, Confirm: yes, Force: true}); !errors.Is(err, ErrAwaitingApproval) {
		t.Errorf("shift: %v, want awaiting approval", err)
	}
	if _, err := New(fx.d).Switch(ctx, w.target(), SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Confirm: yes}); !errors.Is(err, ErrAwaitingApproval) {
		t.Errorf("rollback: %v, want refused (awaiting approval)", err)
	}
	if w.liveCommit() != shaA {
		t.Errorf("live %s, want aaaaaaa", release.Short(w.liveCommit()))
	}
}

// wasLive records in the marks that sha took traffic once.
func wasLive(t *testing.T, fx *fixture, sha string) {
	t.Helper()
	err := store.UpdateMarks(context.Background(), fx.st, "api", func(m store.Marks) {
		m.ApplyEvent(&release.Event{Time: time.Now(), Action: release.ActionDeploy, Result: release.ResultOK, To: release.Side{Color: release.Green, Commit: sha}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestApprovalRollbackToIsNoDeploy: rollback --to needs no approval to go
// back to a release that took traffic before; but to a release that never
// did, or one awaiting approval, it would be a deploy without the second
// person: refused (exit 14) unless --force, which history records.
func TestApprovalRollbackToIsNoDeploy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("never live", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		fx := deployFixture(t, w)
		fx.reconfigure(t, approvalRC)
		_, err := fx.runner().RollbackTo(ctx, DeployRequest{Rev: "ccccccc", Reason: "hotfix"})
		if !errors.Is(err, ErrAwaitingApproval) || !strings.Contains(err.Error(), "ccccccc never took traffic") || !strings.Contains(hintOf(err), "oops deploy ccccccc") {
			t.Fatalf("rollback --to a release never live: %v (hint %q)", err, hintOf(err))
		}
		if w.liveCommit() != shaA || w.state().Off.Commit == shaC {
			t.Fatalf("live %s, off %s: want nothing installed nor switched", release.Short(w.liveCommit()), release.Short(w.state().Off.Commit))
		}
		if _, err := New(fx.d).RollbackTo(ctx, DeployRequest{Rev: "ccccccc", Reason: "hotfix", Force: true}); err != nil || w.liveCommit() != shaC {
			t.Fatalf("rollback --to --force: %v, live %s", err, release.Short(w.liveCommit()))
		}
	})
	t.Run("awaiting approval", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		fx := deployFixture(t, w)
		fx.reconfigure(t, approvalRC)
		if _, err := fx.runner().Deploy(ctx, DeployRequest{Rev: "ccccccc"}); !errors.Is(err, ErrAwaitingApproval) {
			t.Fatal(err)
		}
		wasLive(t, fx, shaC) // even once live: this deploy of it awaits approval
		if _, err := New(fx.d).RollbackTo(ctx, DeployRequest{Rev: "ccccccc"}); !errors.Is(err, ErrAwaitingApproval) {
			t.Fatalf("rollback --to the release awaiting approval: %v", err)
		}
		if w.liveCommit() != shaA {
			t.Fatalf("live %s, want aaaaaaa", release.Short(w.liveCommit()))
		}
	})
}

// TestRefuseAwaitingStoreDown: rollback --no-lock runs because the store
// cannot be reached; the approval check of the rollback does not ask it
// again (each try would wait for an answer that does not come).
func TestRefuseAwaitingStoreDown(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, approvalRC)
	fx.d.Store = func(context.Context) (store.Store, error) {
		t.Error("the store was asked while known to be down")
		return nil, errors.New("down")
	}
	r := New(fx.d)
	r.storeDown = errors.New("connection refused")
	st := &target.State{Live: target.ColorState{Color: release.Blue, Commit: shaA}, Off: target.ColorState{Color: release.Green, Commit: shaC}}
	if err := r.refuseAwaiting(context.Background(), st, release.Green); err != nil {
		t.Fatal(err)
	}
}
