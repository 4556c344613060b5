package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// With require-approval in .oopsrc, a deploy installs the release on the
// off color and stops before the switch, recording a request; someone
// other than the deployer (one of approvers, when set) approves the
// commit with oops approve; the next oops deploy of it switches at once,
// and the approval is used up. A rollback never needs one. A shift or
// promote to a color whose release awaits approval is refused, so the
// request cannot be gone around.

// ErrAwaitingApproval: the release is installed on the off color and
// waits for someone else's approval before traffic goes to it.
var ErrAwaitingApproval = errors.New("awaiting approval")

// Approval is one commit's request for approval and, once given, the
// approval.
type Approval struct {
	Commit string `json:"commit"`
	// Color is where the deploy that asked installed it.
	Color       release.Color `json:"color"`
	RequestedBy string        `json:"requested_by"`
	RequestedAt time.Time     `json:"requested_at"`
	Reason      string        `json:"reason,omitempty"`
	// ApprovedBy is "" while the request waits.
	ApprovedBy string    `json:"approved_by,omitempty"`
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	Message    string    `json:"message,omitempty"`
}

// Approved says whether someone approved it.
func (a Approval) Approved() bool { return a.ApprovedBy != "" }

// approvalsPrefix is where approvals live: one object per commit.
func approvalsPrefix(app string) string { return app + "/" + store.MetaDir + "/approvals/" }

func approvalKey(app, sha string) string { return approvalsPrefix(app) + sha + ".json" }

// readApproval reads sha's approval; nil when there is none.
func readApproval(ctx context.Context, st store.Store, app, sha string) (*Approval, string, error) {
	rc, obj, err := st.Get(ctx, approvalKey(app, sha))
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the approval of %s: %w", release.Short(sha), err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", fmt.Errorf("read the approval of %s: %w", release.Short(sha), err)
	}
	var a Approval
	if err := json.Unmarshal(data, &a); err != nil || a.Commit != sha {
		return nil, "", fmt.Errorf("read the approval of %s: %w", release.Short(sha), &store.CorruptError{Key: approvalKey(app, sha), Err: err})
	}
	return &a, obj.ETag, nil
}

// putApproval writes a: created when etag is "", else replaced only if
// it did not change since it was read.
func putApproval(ctx context.Context, st store.Store, app string, a *Approval, etag string) error {
	body, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	key := approvalKey(app, a.Commit)
	if etag == "" {
		_, err = st.Create(ctx, key, bytes.NewReader(body), int64(len(body)), nil)
	} else {
		_, err = st.Replace(ctx, key, body, etag)
	}
	if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrPrecondition) {
		return fmt.Errorf("write the approval of %s: it changed meanwhile (%w): run the command again", release.Short(a.Commit), err)
	}
	if err != nil {
		return fmt.Errorf("write the approval of %s: %w", release.Short(a.Commit), err)
	}
	return nil
}

// PendingApprovals are Approvals for oops status: none, and no store read,
// without require-approval (nor with a .oopsrc that does not load: status
// reads the target, which says so).
func (r *Runner) PendingApprovals(ctx context.Context) ([]Approval, error) {
	if c, err := r.d.Config(); err != nil || !c.RequireApproval {
		return nil, nil
	}
	return r.Approvals(ctx)
}

// Approvals are the application's approvals not used yet, requested
// first first: those awaiting one, and those given for a deploy still to
// switch. Unreadable ones are warned about and left out.
func (r *Runner) Approvals(ctx context.Context) ([]Approval, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	st, err := r.d.Store(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	err = st.List(ctx, approvalsPrefix(c.ApplicationName), store.ListOptions{}, func(o store.Object) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list approvals in %s: %w", st, err)
	}
	var out []Approval
	for _, k := range keys {
		sha := strings.TrimSuffix(strings.TrimPrefix(k, approvalsPrefix(c.ApplicationName)), ".json")
		a, _, err := readApproval(ctx, st, c.ApplicationName, sha)
		if err != nil {
			r.warnf("%v", err)
			continue
		}
		if a != nil {
			out = append(out, *a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RequestedAt.Before(out[j].RequestedAt) })
	return out, nil
}

// needsApproval says whether a change of this action waits for an
// approval: with require-approval, whatever sends traffic to a release
// forward (deploy, shift, promote, switch); never a rollback, nor oops off.
func needsApproval(c *config.Config, action string) bool {
	if c == nil || !c.RequireApproval {
		return false
	}
	switch action {
	case release.ActionDeploy, release.ActionShift, release.ActionPromote, release.ActionSwitch:
		return true
	}
	return false
}

// gateApproval is deploy's stop before the switch, under the lock: nil
// when the release is approved; else it records the request (once: the
// first deployer stays its requester) and returns ErrAwaitingApproval,
// the install recorded and traffic untouched. With --no-switch it records
// the request and lets the deploy end there.
func (r *Runner) gateApproval(ctx context.Context, dp *deployment, ev *release.Event) (*Approval, error) {
	c, err := r.d.Config()
	if err != nil || !needsApproval(c, dp.req.Action) {
		return nil, err
	}
	a, err := r.requestApproval(ctx, c, dp)
	if err != nil {
		return nil, err
	}
	if a.Approved() {
		r.d.Report.Progressf("%s was approved by %s%s", dp.rel.Short(), a.ApprovedBy, quoted(a.Message))
		return a, nil
	}
	if dp.req.NoSwitch {
		return a, nil
	}
	ev.NoSwitch = true
	dp.out.Done = true
	hint := fmt.Sprintf("someone other than %s approves it with: oops approve %s -m WHY", a.RequestedBy, dp.rel.Short())
	if len(c.Approvers) > 0 {
		hint += " (approvers: " + strings.Join(c.Approvers, ", ") + ")"
	}
	hint += fmt.Sprintf("; then oops deploy %s switches at once; oops status lists what awaits approval", dp.rel.Short())
	return a, target.Hinted(fmt.Errorf("%s is installed on %s (%s), traffic stays on %s: %w (require-approval, requested by %s)",
		dp.rel.Short(), dp.st.Off.Color, dp.st.Off.Where(), dp.st.Live.Color, ErrAwaitingApproval, a.RequestedBy), hint)
}

// requestApproval reads the release's approval, recording the request
// when there is none yet.
func (r *Runner) requestApproval(ctx context.Context, c *config.Config, dp *deployment) (*Approval, error) {
	st, err := r.d.Store(ctx)
	if err != nil {
		return nil, err
	}
	app, sha, off := c.ApplicationName, dp.rel.Commit, dp.st.Off.Color
	a, etag, err := readApproval(ctx, st, app, sha)
	if err != nil {
		return nil, err
	}
	if a != nil && a.Approved() {
		return a, nil
	}
	if a == nil {
		who := r.Identity(ctx).Who
		if r.OnAWS() && !strings.HasPrefix(who, "arn:") {
			// A requester named by a git user.name of their choosing could
			// then approve under their own ARN.
			return nil, target.Hinted(fmt.Errorf("record the request for approval of %s: could not tell who you are from AWS (STS): require-approval records the deployer's caller ARN", dp.rel.Short()),
				"check the AWS credentials and that STS answers (aws sts get-caller-identity), then deploy again; nothing was installed")
		}
		a = &Approval{Commit: sha, Color: off, RequestedBy: who, RequestedAt: r.d.Now().UTC(), Reason: dp.req.Reason}
		if err := putApproval(ctx, st, app, a, etag); err != nil {
			return nil, err
		}
		r.dropReplaced(ctx, st, app, sha, off)
	}
	dp.out.Approval = a
	return a, nil
}

// requestBeforeInstall records the request before the release is put on
// the off color: a deploy that stops after the install and before its
// approval gate (a post-install hook, an unhealthy color, a crash, or
// --no-wait, where CodeDeploy finishes alone) leaves it there all the
// same, and without a request nothing would keep oops shift, promote or
// rollback from sending traffic to it.
func (r *Runner) requestBeforeInstall(ctx context.Context, dp *deployment) error {
	c, err := r.d.Config()
	if err != nil || dp.warm || !needsApproval(c, dp.req.Action) {
		return err
	}
	_, err = r.requestApproval(ctx, c, dp)
	return err
}

// dropReplaced removes the requests still waiting for other commits on
// color: the release they were for is no longer there.
func (r *Runner) dropReplaced(ctx context.Context, st store.Store, app, sha string, color release.Color) {
	all, err := r.Approvals(ctx)
	if err != nil {
		return
	}
	for _, a := range all {
		if a.Commit != sha && a.Color == color && !a.Approved() {
			if err := st.Delete(ctx, approvalKey(app, a.Commit), ""); err != nil {
				r.warnf("could not remove the request for %s, which %s no longer runs: %v", release.Short(a.Commit), color, err)
			}
		}
	}
}

// useApproval removes sha's approval once traffic went to it.
func (r *Runner) useApproval(ctx context.Context, sha string) {
	c, err := r.d.Config()
	if err != nil {
		return
	}
	st, err := r.d.Store(ctx)
	if err == nil {
		err = st.Delete(ctx, approvalKey(c.ApplicationName, sha), "")
	}
	if err != nil {
		r.warnf("could not mark the approval of %s used: %v", release.Short(sha), err)
	}
}

// checkApproved refuses a shift or promote to a color whose release
// awaits approval.
func (r *Runner) checkApproved(ctx context.Context, st *target.State, to release.Color) error {
	c, err := r.d.Config()
	if err != nil {
		return err
	}
	cs := st.Color(to)
	if !cs.CommitKnown() {
		return nil
	}
	s, err := r.d.Store(ctx)
	if err != nil {
		return err
	}
	a, _, err := readApproval(ctx, s, c.ApplicationName, cs.Commit)
	if err != nil || a == nil || a.Approved() {
		return err
	}
	return target.Hinted(fmt.Errorf("%s on %s: %w (require-approval, requested by %s)", release.Short(cs.Commit), to, ErrAwaitingApproval, a.RequestedBy),
		fmt.Sprintf("someone other than %s approves it with: oops approve %s -m WHY", a.RequestedBy, release.Short(cs.Commit)))
}

// refuseAwaiting stops a rollback onto a color that runs a release
// awaiting approval: a deploy installed it there in place of the release
// to go back to, so the rollback would put it live unapproved. What cannot
// be read is warned about and let through: bookkeeping never blocks a
// rollback.
func (r *Runner) refuseAwaiting(ctx context.Context, st *target.State, to release.Color) error {
	c, err := r.d.Config()
	if err != nil || !c.RequireApproval || r.storeDown != nil {
		return nil // rollback --no-lock: the store is not asked again
	}
	cs := st.Color(to)
	if !cs.CommitKnown() {
		return nil
	}
	s, err := r.d.Store(ctx)
	var a *Approval
	if err == nil {
		a, _, err = readApproval(ctx, s, c.ApplicationName, cs.Commit)
	}
	if err != nil {
		r.warnf("cannot tell whether %s awaits approval: %v", release.Short(cs.Commit), err)
		return nil
	}
	if a == nil || a.Approved() {
		return nil
	}
	return target.Hinted(fmt.Errorf("refusing to roll back to %s: it runs %s, which %s deployed since, in place of the release to go back to: %w (require-approval)", to, release.Short(cs.Commit), a.RequestedBy, ErrAwaitingApproval),
		"roll back to a known-good release instead: oops rollback --to REV (oops list marks them); or pass --force to put it live anyway")
}

// checkRollbackTo keeps rollback --to from being a deploy without the
// second person, with require-approval: going back to a release that
// took traffic before needs no approval, but one that never did, or whose
// deploy awaits approval, is refused unless --force (which history
// records). Marks that cannot be read are warned about and let through:
// bookkeeping never blocks a rollback.
func (r *Runner) checkRollbackTo(ctx context.Context, dp *deployment) error {
	c, err := r.d.Config()
	if err != nil || !c.RequireApproval || dp.req.Action != release.ActionRollback || dp.req.Force {
		return nil
	}
	short := dp.rel.Short()
	st := dp.idx.Store()
	a, _, err := readApproval(ctx, st, c.ApplicationName, dp.rel.Commit)
	if err != nil {
		r.warnf("cannot tell whether %s awaits approval: %v", short, err)
		return nil
	}
	if a != nil && a.Approved() {
		return nil
	}
	if a != nil {
		return target.Hinted(fmt.Errorf("refusing to roll back to %s: its deploy by %s is %w (require-approval)", short, a.RequestedBy, ErrAwaitingApproval),
			fmt.Sprintf("roll back to a release that took traffic before (oops list), or have someone other than %s run oops approve %s; --force rolls back to it anyway", a.RequestedBy, short))
	}
	m, err := store.LoadMarks(ctx, st, c.ApplicationName)
	if err != nil {
		r.warnf("cannot tell whether %s took traffic before: %v", short, err)
		return nil
	}
	if m[dp.rel.Commit].LiveAt.IsZero() {
		return target.Hinted(fmt.Errorf("refusing to roll back to %s: %s never took traffic, so this would be a deploy: %w of someone else (require-approval)", short, short, ErrAwaitingApproval),
			fmt.Sprintf("oops deploy %s asks for the approval; roll back to a release that took traffic before (oops list); or --force rolls back to it anyway", short))
	}
	return nil
}

func quoted(msg string) string {
	if msg == "" {
		return ""
	}
	return fmt.Sprintf(": %q", msg)
}

// ApproveRequest is oops approve REV.
type ApproveRequest struct {
	Rev     string
	Message string
	DryRun  bool
	// Confirm is asked before the approval is recorded (nil: go ahead).
	Confirm func(question string) (bool, error)
}

// ApproveOutcome is what oops approve found and did.
type ApproveOutcome struct {
	Approval Approval
	// Already: it had been approved; nothing was changed.
	Already bool
}

// Approve records the approval of a deploy that awaits one, under the
// lock, as an event. The deployer's own approval is refused, and so is
// that of anyone not in approvers when .oopsrc lists them.
func (r *Runner) Approve(ctx context.Context, req ApproveRequest) (*ApproveOutcome, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	if !c.RequireApproval {
		return nil, target.Hinted(Usagef("nothing to approve: .oopsrc does not set require-approval, so deploys switch without one"),
			`to have deploys wait for a second person: "require-approval": true in .oopsrc (README, section Approvals)`)
	}
	sha, err := r.d.Resolve(ctx, req.Rev)
	if err != nil {
		return nil, err
	}
	short := release.Short(sha)
	out := &ApproveOutcome{}
	ch := Change{Action: release.ActionApprove, Command: "oops approve " + short, Reason: req.Message, DryRun: req.DryRun}
	err = r.Locked(ctx, ch, func(ctx context.Context, ev *release.Event) error {
		ev.To = release.Side{Commit: sha}
		st, err := r.d.Store(ctx)
		if err != nil {
			return err
		}
		a, etag, err := readApproval(ctx, st, c.ApplicationName, sha)
		if err != nil {
			return err
		}
		if a == nil {
			return target.Hinted(Usagef("no deploy of %s awaits approval", short),
				fmt.Sprintf("oops status lists the deploys that do; oops deploy %s asks for one", short))
		}
		ev.To.Color = a.Color
		out.Approval = *a
		if a.Approved() {
			out.Already = true
			return nil
		}
		id := r.Identity(ctx)
		who := id.Who
		if r.OnAWS() && !strings.HasPrefix(who, "arn:") {
			// The git user.name anyone can set must not stand in for the
			// caller ARN: the deployer could approve as an approver.
			return target.Hinted(Usagef("could not tell who you are from AWS (STS): on AWS an approval is given by the caller ARN, not by %q", who),
				"check the AWS credentials and that STS answers (aws sts get-caller-identity), then run oops approve again")
		}
		if r.isRequester(a.RequestedBy, id) {
			return target.Hinted(Usagef("%s deployed %s and cannot approve it too: require-approval wants a second person", who, short),
				fmt.Sprintf("ask someone else to run: oops approve %s -m WHY", short))
		}
		if len(c.Approvers) > 0 && !isApprover(c.Approvers, who) {
			return target.Hinted(Usagef("%s is not one of the approvers in %s", who, c.Path),
				"approvers: "+strings.Join(c.Approvers, ", "))
		}
		if req.DryRun {
			return nil
		}
		if req.Confirm != nil {
			ok, err := req.Confirm(fmt.Sprintf("Approve %s (on %s, deployed by %s%s) as %s?", short, a.Color, a.RequestedBy, quoted(a.Reason), who))
			if err := confirmed(ok, err); err != nil {
				return err
			}
		}
		a.ApprovedBy, a.ApprovedAt, a.Message = who, r.d.Now().UTC(), req.Message
		if err := putApproval(ctx, st, c.ApplicationName, a, etag); err != nil {
			return err
		}
		out.Approval = *a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// isRequester says whether id is the one who asked for the approval,
// however the identity was spelled: case aside (IAM names ignore it), and,
// for a request recorded while STS could not tell (not an ARN), under the
// names this host gives id too.
func (r *Runner) isRequester(requestedBy string, id Identity) bool {
	names := []string{id.Who}
	if !strings.HasPrefix(requestedBy, "arn:") && strings.HasPrefix(id.Who, "arn:") {
		names = append(names, r.gitUser(), id.OSUser)
	}
	for _, n := range names {
		if n != "" && strings.EqualFold(strings.TrimSpace(n), strings.TrimSpace(requestedBy)) {
			return true
		}
	}
	return false
}

// isApprover matches an identity against approvers: equal, or, for an
// entry ending in *, starting with what comes before it.
func isApprover(approvers []string, who string) bool {
	for _, a := range approvers {
		if p, ok := strings.CutSuffix(a, "*"); ok && strings.HasPrefix(who, p) || a == who {
			return true
		}
	}
	return false
}

// ApprovedOff is the approved deploy waiting on st's off color (the
// release there, approved and not switched to yet), or nil: oops promote
// switches to it when no canary is in progress.
func (r *Runner) ApprovedOff(ctx context.Context, st *target.State) (*Approval, error) {
	c, err := r.d.Config()
	if err != nil || !c.RequireApproval || !st.Off.CommitKnown() {
		return nil, err
	}
	s, err := r.d.Store(ctx)
	if err != nil {
		return nil, err
	}
	a, _, err := readApproval(ctx, s, c.ApplicationName, st.Off.Commit)
	if err != nil || a == nil || !a.Approved() || a.Color != st.Off.Color {
		return nil, err
	}
	return a, nil
}
