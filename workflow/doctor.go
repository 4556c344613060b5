package workflow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// Check is one line of `oops doctor`.
type Check struct {
	Name   string `json:"check"`
	Status string `json:"status"` // ok, warn, fail
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
	// Err is a failure's error: its exit code is doctor's.
	Err error `json:"-"`
}

func fail(name string, err error, hint string) Check {
	return Check{Name: name, Status: "fail", Detail: err.Error(), Hint: hint, Err: err}
}

// Doctor reads everything a rollback needs, changes nothing, and says what
// is wrong and what to do about it, in the order a rollback meets it. A
// check that leaves nothing more to read ends the list.
func (r *Runner) Doctor(ctx context.Context) []Check {
	cfg, err := r.d.Config()
	if err != nil {
		return []Check{fail("config", err, "create one with oops init, or pass --config FILE / -C DIR")}
	}
	out := []Check{{Name: "config", Status: "ok", Detail: cfg.Path}}
	if len(cfg.Values.Hooks) > 0 {
		out = append(out, checkHooks(cfg))
	}
	if wd, err := r.d.WorkDir(); err == nil {
		if _, err := release.OpenRepo(wd); err == nil {
			out = append(out, Check{Name: "git", Status: "ok", Detail: "repository found: REV may be a tag, branch or HEAD~N"})
		} else {
			out = append(out, Check{Name: "git", Status: "warn", Detail: "no git repository here",
				Hint: "REV must then be a full SHA or a unique prefix of a published release"})
		}
	}
	if r.OnAWS() {
		out = append(out, r.checkCredentials(ctx))
	}
	st, err := r.d.Store(ctx)
	if err != nil {
		return append(out, fail("store", err, "check \"store\" / \"s3-bucket\" in "+cfg.Path))
	}
	out = append(out, checkStore(ctx, cfg, st))
	lock, locked := r.checkLock(ctx, cfg, st)
	out = append(out, lock, r.checkFsck(ctx))
	if cfg.TargetKind() == "" {
		return append(out, Check{Name: "target", Status: "warn", Detail: "no target configured: list and publish only",
			Hint: `set "elb-name", "alb-name" or "target": "local" in ` + cfg.Path})
	}
	t, err := r.d.Target(ctx)
	if err != nil {
		return append(out, fail("target", err, ""))
	}
	tc, ok := checkTarget(ctx, t)
	out = append(out, tc)
	if !ok {
		return out
	}
	return append(out, r.checkRollback(ctx, cfg, locked))
}

// checkCredentials asks AWS who the credentials belong to.
func (r *Runner) checkCredentials(ctx context.Context) Check {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	who, err := r.d.Credentials(ctx)
	if err != nil {
		return Check{Name: "aws", Status: "fail", Detail: err.Error(), Err: err,
			Hint: "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and a region"}
	}
	return Check{Name: "aws", Status: "ok", Detail: who}
}

// checkStore lists one release: the store can be read, and has releases.
func checkStore(ctx context.Context, cfg *config.Config, st store.Store) Check {
	n := 0
	err := st.List(ctx, release.Prefix(cfg.ApplicationName), store.ListOptions{Limit: 1}, func(store.Object) error { n++; return nil })
	switch {
	case err != nil:
		return fail("store", fmt.Errorf("list %s: %w", st, err), "check the bucket name, region and s3:ListBucket permission")
	case n == 0:
		return Check{Name: "store", Status: "warn", Detail: st.String() + ": no releases yet", Hint: "publish one with: oops publish FILE"}
	}
	return Check{Name: "store", Status: "ok", Detail: st.String()}
}

// checkLock reads the lock, and the refusal a rollback would meet now.
func (r *Runner) checkLock(ctx context.Context, cfg *config.Config, st store.Store) (Check, error) {
	info, _, err := store.ReadLock(ctx, st, cfg.ApplicationName)
	var locked error
	if err == nil {
		locked = r.LockRefusal(info)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Check{Name: "lock", Status: "ok", Detail: "free"}, nil
	case err != nil:
		return fail("lock", fmt.Errorf("read lock: %w", err), "check read access to the store"), nil
	case info.Stale(r.d.Now()):
		return Check{Name: "lock", Status: "warn", Detail: "stale lock of " + info.Describe(), Hint: "the next command takes it over; or: oops lock release"}, locked
	}
	return Check{Name: "lock", Status: "warn", Detail: fmt.Sprintf("held by %s (%q)", info.Describe(), info.Command), Hint: "see: oops lock status"}, locked
}

// checkFsck runs fsck's quick checks (no --deep, no --repair).
// Undecodable objects fail (commands that read them may fail too);
// other problems warn.
func (r *Runner) checkFsck(ctx context.Context) Check {
	res, err := r.Fsck(ctx, false, false)
	if err != nil {
		return Check{Name: "fsck", Status: "fail", Detail: err.Error(), Hint: HintOf(err), Err: err}
	}
	if len(res.Problems) == 0 {
		return Check{Name: "fsck", Status: "ok", Detail: FsckSummary(res)}
	}
	first := res.Problems[0]
	hint := "see them all with: oops fsck"
	for _, p := range res.Problems {
		if p.Kind == store.FsckCorrupt {
			err := fmt.Errorf("%s: %w", p.Key, store.ErrCorrupt)
			return Check{Name: "fsck", Status: "fail", Detail: fmt.Sprintf("%d problems; %s", len(res.Problems), p.Detail), Hint: hint + "; oops fsck --repair rebuilds what it can", Err: err}
		}
	}
	return Check{Name: "fsck", Status: "warn", Detail: fmt.Sprintf("%d problems; first: %s %s: %s", len(res.Problems), first.Kind, first.Key, first.Detail), Hint: hint}
}

// checkTarget reads the target's state; false when there is nothing more
// to check (it cannot be read at all).
func checkTarget(ctx context.Context, t target.Target) (Check, bool) {
	ts, err := t.State(ctx)
	if err != nil && (ts == nil || ts.Pending == nil) {
		return fail("target", fmt.Errorf("%s: %w", t, err), "see: oops status; an interrupted switch is fixed by oops repair"), false
	}
	if err != nil {
		return Check{Name: "target", Status: "warn", Detail: fmt.Sprintf("%s: %v", t, FirstLine(err)), Hint: "oops rollback finishes the interrupted switch; oops repair undoes it"}, true
	}
	detail := fmt.Sprintf("%s: %s live, %s off", t, ts.Live.Color, ts.Off.Color)
	for _, l := range ts.Listeners {
		// Settings a switch carries along, which need their own permission.
		if strings.HasPrefix(l, "backend policies") {
			detail += "; " + l
		}
	}
	return Check{Name: "target", Status: "ok", Detail: detail}, true
}

// checkRollback runs `oops rollback --dry-run`'s own preflight (the same
// functions, so the verdict cannot differ from what rollback then does):
// target, proxy, the lock (locked: the refusal the lock as read would
// give), state, the BAD-release refusal, the health gate and the plan, in
// rollback's order. A failure carries rollback's own exit code.
func (r *Runner) checkRollback(ctx context.Context, cfg *config.Config, locked error) Check {
	failed := func(err error, hint string) Check {
		return Check{Name: "rollback", Status: "fail", Detail: "oops rollback would fail: " + err.Error(), Hint: hint, Err: err}
	}
	p, err := r.Preflight(ctx)
	if err != nil {
		return failed(err, "")
	}
	if p.NotServing != nil {
		return failed(p.NotServing, HintOf(p.NotServing))
	}
	if locked != nil {
		return Check{Name: "rollback", Status: "fail", Detail: "oops rollback would be refused now: " + locked.Error(), Hint: HintOf(locked), Err: locked}
	}
	req := SwitchRequest{DryRun: true, Verify: VerifyTimeout(cfg), Action: release.ActionRollback}
	res, err := target.Switch(ctx, p.Target, r.SwitchOptions(ctx, req))
	if err != nil {
		return failed(err, HintOf(err))
	}
	if res.Plan == nil {
		return Check{Name: "rollback", Status: "ok", Detail: fmt.Sprintf("%s is already live: a rollback has nothing to do", res.Before.Live.Color)}
	}
	return Check{Name: "rollback", Status: "ok", Detail: fmt.Sprintf("the off color %s is healthy: oops rollback is ready (%s -> %s)", res.Plan.To, res.Plan.From, res.Plan.To)}
}

// VerifyTimeout is verify-timeout from .oopsrc, else 60s; 0 turns
// verification off. A command's --verify-timeout wins over it.
func VerifyTimeout(c *config.Config) time.Duration {
	if d := c.Values.VerifyTimeout; d != nil {
		return *d // parsed when .oopsrc loaded
	}
	return 60 * time.Second
}

// HintOf is the first hint attached to err ("" when none).
func HintOf(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(interface{ Hint() string }); ok && h.Hint() != "" {
			return h.Hint()
		}
	}
	return ""
}

// Fsck checks (and with repair, fixes) the application's records in the
// store, and what interrupted deploys left behind on this host.
func (r *Runner) Fsck(ctx context.Context, repair, deep bool) (*store.FsckResult, error) {
	c, err := r.d.Config()
	if err != nil {
		return nil, err
	}
	st, err := r.d.Store(ctx)
	if err != nil {
		return nil, err
	}
	opts := store.FsckOptions{App: c.ApplicationName, Repair: repair, Deep: deep, Now: r.d.Now}
	if r.d.Leftovers != nil {
		opts.Leftovers = append(opts.Leftovers, r.d.Leftovers()...)
	}
	res, err := store.Fsck(ctx, st, opts)
	if err != nil {
		return nil, target.Hinted(fmt.Errorf("fsck %s: %w", st, err), "check that the store can be read: oops doctor")
	}
	return res, nil
}

// FsckSummary is one line: what was checked and what is left to do.
func FsckSummary(res *store.FsckResult) string {
	checked := fmt.Sprintf("checked %d releases (%d artifacts) and %d events", res.Releases, res.Artifacts, res.Events)
	var repaired, repairable, other int
	for _, p := range res.Problems {
		switch {
		case p.Repaired:
			repaired++
		case p.Repairable:
			repairable++
		default:
			other++
		}
	}
	switch {
	case len(res.Problems) == 0:
		return checked + ": no problems"
	case repairable+other == 0:
		return fmt.Sprintf("%s: repaired %d problems", checked, repaired)
	case repairable > 0:
		return fmt.Sprintf("%s: %d problems, %d of them fixed by: oops fsck --repair", checked, repairable+other, repairable)
	}
	return fmt.Sprintf("%s: %d problems that --repair cannot fix; each line says what to do", checked, other)
}
