package cmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/workflow"
)

// check is one line of `oops doctor`.
type check struct {
	Name   string `json:"check"`
	Status string `json:"status"` // ok, warn, fail
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
	err    error
}

func newDoctorCmd(f *Factory) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Check that oops can do its job here: config, store, credentials, target, lock",
		Long: `doctor reads everything a rollback needs, changes nothing, and says what
is wrong and what to do about it. Run it before you need oops, and first
when a command fails in a way you do not understand.

It exits 0 when every check passes (warnings included), else with the exit
code of the first failed check.`,
		Example: "  oops doctor\n  oops doctor --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runDoctor(cmd.Context(), asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func (f *Factory) runDoctor(ctx context.Context, asJSON bool) error {
	checks := f.doctorChecks(ctx)
	var first error
	for _, ch := range checks {
		if ch.Status == "fail" && first == nil {
			first = ch.err
		}
	}
	if asJSON {
		if err := writeJSON(f.IO.Out, checks); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(checks))
		for _, ch := range checks {
			rows = append(rows, []string{ch.Name, ch.Status, ch.Detail})
		}
		if err := printTable(f.IO, []string{"CHECK", "STATUS", "DETAIL"}, rows); err != nil {
			return err
		}
		for _, ch := range checks {
			if ch.Hint != "" && ch.Status != "ok" {
				fmt.Fprintf(f.IO.ErrOut, "%s: %s\n", ch.Name, ch.Hint)
			}
		}
	}
	if first != nil {
		// The table said it all; exit with the failure's own code.
		return fmt.Errorf("%w%w", errSilent, first)
	}
	return nil
}

func (f *Factory) doctorChecks(ctx context.Context) []check {
	fail := func(name string, err error, hint string) check {
		return check{Name: name, Status: "fail", Detail: err.Error(), Hint: hint, err: err}
	}
	var out []check
	cfg, err := f.Config()
	if err != nil {
		return append(out, fail("config", err, "create one with oops init, or pass --config FILE / -C DIR"))
	}
	out = append(out, check{Name: "config", Status: "ok", Detail: cfg.Path})

	if wd, err := f.WorkDir(); err == nil {
		if _, err := release.OpenRepo(wd); err == nil {
			out = append(out, check{Name: "git", Status: "ok", Detail: "repository found: REV may be a tag, branch or HEAD~N"})
		} else {
			out = append(out, check{Name: "git", Status: "warn", Detail: "no git repository here",
				Hint: "REV must then be a full SHA or a unique prefix of a published release"})
		}
	}

	if f.Runner().OnAWS() {
		out = append(out, f.checkCredentials(ctx))
	}

	st, err := f.Store(ctx)
	if err != nil {
		return append(out, fail("store", err, "check \"store\" / \"s3-bucket\" in "+cfg.Path))
	}
	n := 0
	err = st.List(ctx, release.Prefix(cfg.ApplicationName), store.ListOptions{Limit: 1}, func(store.Object) error { n++; return nil })
	switch {
	case err != nil:
		out = append(out, fail("store", fmt.Errorf("list %s: %w", st, err), "check the bucket name, region and s3:ListBucket permission"))
	case n == 0:
		out = append(out, check{Name: "store", Status: "warn", Detail: st.String() + ": no releases yet", Hint: "publish one with: oops publish FILE"})
	default:
		out = append(out, check{Name: "store", Status: "ok", Detail: st.String()})
	}

	info, _, err := store.ReadLock(ctx, st, cfg.ApplicationName)
	var locked error // what rollback's lock would say now
	if err == nil {
		locked = f.Runner().LockRefusal(info)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		out = append(out, check{Name: "lock", Status: "ok", Detail: "free"})
	case err != nil:
		out = append(out, fail("lock", fmt.Errorf("read lock: %w", err), "check read access to the store"))
	case info.Stale(f.Now()):
		out = append(out, check{Name: "lock", Status: "warn", Detail: "stale lock of " + info.Describe(), Hint: "the next command takes it over; or: oops lock release"})
	default:
		out = append(out, check{Name: "lock", Status: "warn", Detail: fmt.Sprintf("held by %s (%q)", info.Describe(), info.Command), Hint: "see: oops lock status"})
	}

	out = append(out, f.fsckCheck(ctx))

	if cfg.TargetKind() == "" {
		return append(out, check{Name: "target", Status: "warn", Detail: "no target configured: list and publish only",
			Hint: `set "elb-name", "alb-name" or "target": "local" in ` + cfg.Path})
	}
	t, err := f.Target(ctx)
	if err != nil {
		return append(out, fail("target", err, ""))
	}
	ts, err := t.State(ctx)
	if err != nil && (ts == nil || ts.Pending == nil) {
		return append(out, fail("target", fmt.Errorf("%s: %w", t, err), "see: oops status; an interrupted switch is fixed by oops repair"))
	}
	if err != nil {
		out = append(out, check{Name: "target", Status: "warn", Detail: fmt.Sprintf("%s: %v", t, workflow.FirstLine(err)), Hint: "oops rollback finishes the interrupted switch; oops repair undoes it"})
	} else {
		detail := fmt.Sprintf("%s: %s live, %s off", t, ts.Live.Color, ts.Off.Color)
		for _, l := range ts.Listeners {
			// Settings a switch carries along, which need their own permission.
			if strings.HasPrefix(l, "backend policies") {
				detail += "; " + l
			}
		}
		out = append(out, check{Name: "target", Status: "ok", Detail: detail})
	}
	return append(out, f.rollbackCheck(ctx, locked))
}

// rollbackCheck runs `oops rollback --dry-run`'s own preflight (the same
// functions, so the verdict cannot differ from what rollback then does):
// config values, target, proxy, the lock (locked: the refusal the lock as
// read would give), state, the BAD-release refusal, the health gate and the
// plan, in rollback's order. A failure carries rollback's own exit code.
func (f *Factory) rollbackCheck(ctx context.Context, locked error) check {
	fail := func(err error, hint string) check {
		return check{Name: "rollback", Status: "fail", Detail: "oops rollback would fail: " + err.Error(), Hint: hint, err: err}
	}
	vt, err := f.verifyTimeout(0, false)
	if err != nil {
		return fail(err, "")
	}
	p, err := f.Runner().Preflight(ctx)
	if err != nil {
		return fail(err, "")
	}
	if p.NotServing != nil {
		return fail(p.NotServing, hintOf(p.NotServing))
	}
	if locked != nil {
		return check{Name: "rollback", Status: "fail", Detail: "oops rollback would be refused now: " + locked.Error(), Hint: hintOf(locked), err: locked}
	}
	req := workflow.SwitchRequest{DryRun: true, Verify: vt, Action: release.ActionRollback}
	res, err := target.Switch(ctx, p.Target, f.Runner().SwitchOptions(ctx, req))
	if err != nil {
		return fail(err, hintOf(err))
	}
	if res.Plan == nil {
		return check{Name: "rollback", Status: "ok", Detail: fmt.Sprintf("%s is already live: a rollback has nothing to do", res.Before.Live.Color)}
	}
	return check{Name: "rollback", Status: "ok", Detail: fmt.Sprintf("the off color %s is healthy: oops rollback is ready (%s -> %s)", res.Plan.To, res.Plan.From, res.Plan.To)}
}

// fsckCheck runs fsck's quick checks (no --deep, no --repair).
// Undecodable objects fail (commands that read them may fail too);
// other problems warn.
func (f *Factory) fsckCheck(ctx context.Context) check {
	res, err := f.fsck(ctx, false, false)
	if err != nil {
		return check{Name: "fsck", Status: "fail", Detail: err.Error(), Hint: hintOf(err), err: err}
	}
	if len(res.Problems) == 0 {
		return check{Name: "fsck", Status: "ok", Detail: fsckSummary(res)}
	}
	first := res.Problems[0]
	var corrupt *store.Problem
	for i := range res.Problems {
		if res.Problems[i].Kind == store.FsckCorrupt {
			corrupt = &res.Problems[i]
			break
		}
	}
	hint := "see them all with: oops fsck"
	if corrupt != nil {
		err := fmt.Errorf("%s: %w", corrupt.Key, store.ErrCorrupt)
		return check{Name: "fsck", Status: "fail", Detail: fmt.Sprintf("%d problems; %s", len(res.Problems), corrupt.Detail), Hint: hint + "; oops fsck --repair rebuilds what it can", err: err}
	}
	return check{Name: "fsck", Status: "warn", Detail: fmt.Sprintf("%d problems; first: %s %s: %s", len(res.Problems), first.Kind, first.Key, first.Detail), Hint: hint}
}

// hintOf is the first hint attached to err, for doctor's hint column.
func hintOf(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(interface{ Hint() string }); ok && h.Hint() != "" {
			return h.Hint()
		}
	}
	return ""
}

// checkCredentials asks STS who the AWS credentials belong to.
func (f *Factory) checkCredentials(ctx context.Context) check {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg, err := f.AWSConfig(ctx)
	if err == nil {
		var api callerIdentityAPI = sts.NewFromConfig(cfg)
		var out *sts.GetCallerIdentityOutput
		if out, err = api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			return check{Name: "aws", Status: "ok", Detail: aws.ToString(out.Arn) + " in " + cfg.Region}
		}
	}
	return check{Name: "aws", Status: "fail", Detail: err.Error(), err: err,
		Hint: "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and a region"}
}
