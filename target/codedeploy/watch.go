package codedeploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/oops-deploy/oops/target"
)

// watcher turns successive reads of one deployment into progress lines,
// printing only what changed since the last read.
type watcher struct {
	d        *Deployer
	id       string
	progress func(string, ...any)

	overview string
	// seen is the last line printed per instance.
	seen map[string]string
	// done holds instances that reached a final status: not read again.
	done map[string]types.InstanceTarget
	// noTargets is set once per-instance progress could not be read (it
	// is still tried on every poll, but said once).
	noTargets bool
}

func (w *watcher) report(ctx context.Context, info *types.DeploymentInfo) {
	if o := overviewLine(info); o != w.overview {
		w.overview = o
		w.progress("deployment %s: %s", w.id, o)
	}
	if info.Status == types.DeploymentStatusCreated || info.Status == types.DeploymentStatusQueued {
		return
	}
	targets, err := w.targets(ctx)
	if err != nil {
		// A deadline or Ctrl-C is reported by Wait; this is about AWS.
		if !w.noTargets && ctx.Err() == nil {
			// Progress per instance is a convenience: a role without
			// codedeploy:ListDeploymentTargets still deploys.
			w.noTargets = true
			w.progress("per-instance progress unavailable: %v", err)
		}
		return
	}
	for _, t := range targets {
		id := aws.ToString(t.TargetId)
		if line := instanceLine(t); w.seen[id] != line {
			w.seen[id] = line
			w.progress("  %s", line)
		}
	}
}

// targets reads the deployment's instances, in CodeDeploy's order.
// Instances that finished are read once and then taken from w.done, so a
// large fleet costs calls only for the instances still deploying.
func (w *watcher) targets(ctx context.Context) ([]types.InstanceTarget, error) {
	var ids []string
	var next *string
	for {
		out, err := w.d.API.ListDeploymentTargets(ctx, &codedeploy.ListDeploymentTargetsInput{DeploymentId: aws.String(w.id), NextToken: next})
		if err != nil {
			return nil, fmt.Errorf("list instances of deployment %s: %w", w.id, err)
		}
		ids = append(ids, out.TargetIds...)
		next = out.NextToken
		if aws.ToString(next) == "" {
			break
		}
	}
	current := map[string]types.InstanceTarget{}
	var todo []string
	for _, id := range ids {
		if t, ok := w.done[id]; ok {
			current[id] = t
		} else {
			todo = append(todo, id)
		}
	}
	for len(todo) > 0 {
		n := min(batchSize, len(todo))
		out, err := w.d.API.BatchGetDeploymentTargets(ctx, &codedeploy.BatchGetDeploymentTargetsInput{DeploymentId: aws.String(w.id), TargetIds: todo[:n]})
		if err != nil {
			return nil, fmt.Errorf("read instances of deployment %s: %w", w.id, err)
		}
		todo = todo[n:]
		for _, dt := range out.DeploymentTargets {
			if dt.InstanceTarget == nil {
				continue
			}
			t := *dt.InstanceTarget
			id := aws.ToString(t.TargetId)
			current[id] = t
			switch t.Status {
			case types.TargetStatusSucceeded, types.TargetStatusFailed, types.TargetStatusSkipped, types.TargetStatusReady:
				w.done[id] = t
			}
		}
	}
	out := make([]types.InstanceTarget, 0, len(ids))
	for _, id := range ids {
		if t, ok := current[id]; ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// overviewLine summarises a deployment: "InProgress: 1 succeeded, 2 pending".
func overviewLine(info *types.DeploymentInfo) string {
	s := string(info.Status)
	o := info.DeploymentOverview
	if o == nil {
		return s
	}
	var parts []string
	for _, c := range []struct {
		n    int64
		name string
	}{{o.Succeeded, "succeeded"}, {o.Failed, "failed"}, {o.InProgress, "in progress"}, {o.Pending, "pending"}, {o.Skipped, "skipped"}, {o.Ready, "ready"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.name))
		}
	}
	if len(parts) == 0 {
		return s
	}
	return s + " (instances: " + strings.Join(parts, ", ") + ")"
}

// instanceLine is one instance's state: its status and the lifecycle event
// it is in (or stopped at).
func instanceLine(t types.InstanceTarget) string {
	name := aws.ToString(t.TargetId)
	if t.InstanceLabel != "" {
		name += " (" + string(t.InstanceLabel) + ")"
	}
	ev := currentEvent(t.LifecycleEvents)
	if ev == nil {
		return fmt.Sprintf("%s: %s", name, t.Status)
	}
	return fmt.Sprintf("%s: %s, %s %s", name, t.Status, aws.ToString(ev.LifecycleEventName), ev.Status)
}

// currentEvent is the event running now, else the failed one, else the
// last one that ran.
func currentEvent(evs []types.LifecycleEvent) *types.LifecycleEvent {
	var last *types.LifecycleEvent
	for i := range evs {
		switch evs[i].Status {
		case types.LifecycleEventStatusInProgress, types.LifecycleEventStatusFailed:
			return &evs[i]
		case types.LifecycleEventStatusSucceeded, types.LifecycleEventStatusSkipped:
			last = &evs[i]
		}
	}
	return last
}

// failure gathers why a deployment failed or was stopped.
func (w *watcher) failure(ctx context.Context, info *types.DeploymentInfo) *FailedError {
	fe := &FailedError{ID: w.id, Status: string(info.Status)}
	if ei := info.ErrorInformation; ei != nil {
		fe.Code, fe.Message = string(ei.Code), aws.ToString(ei.Message)
	}
	targets, err := w.targets(ctx)
	if err != nil {
		fe.NoInstances = err.Error()
		return fe
	}
	for _, t := range targets {
		if t.Status != types.TargetStatusFailed {
			continue
		}
		f := InstanceFailure{Instance: aws.ToString(t.TargetId)}
		for _, ev := range t.LifecycleEvents {
			if ev.Status != types.LifecycleEventStatusFailed {
				continue
			}
			f.Event = aws.ToString(ev.LifecycleEventName)
			if dg := ev.Diagnostics; dg != nil {
				f.ErrorCode = string(dg.ErrorCode)
				f.Script = aws.ToString(dg.ScriptName)
				f.Message = aws.ToString(dg.Message)
				f.LogTail = aws.ToString(dg.LogTail)
			}
			break
		}
		fe.Instances = append(fe.Instances, f)
	}
	return fe
}

// InstanceFailure is what went wrong on one instance, from its failed
// lifecycle event's diagnostics.
type InstanceFailure struct {
	Instance  string `json:"instance"`
	Event     string `json:"lifecycle_event,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	Script    string `json:"script,omitempty"`
	Message   string `json:"message,omitempty"`
	LogTail   string `json:"log_tail,omitempty"`
}

// FailedError is a deployment that failed or was stopped.
type FailedError struct {
	ID     string
	Status string
	// Code and Message are the deployment's error information.
	Code, Message string
	Instances     []InstanceFailure
	// NoInstances says why instance diagnostics could not be read.
	NoInstances string
}

// Unwrap makes errors.Is(err, target.ErrDeployFailed) true.
func (e *FailedError) Unwrap() error { return target.ErrDeployFailed }

func (e *FailedError) Error() string {
	verb := "failed"
	if e.Status == string(types.DeploymentStatusStopped) {
		verb = "was stopped"
	}
	msg := fmt.Sprintf("deployment %s %s", e.ID, verb)
	if len(e.Instances) > 0 {
		f := e.Instances[0]
		msg += ": " + f.Instance
		if f.Event != "" {
			msg += " failed in " + f.Event
		} else {
			msg += " failed"
		}
		if f.ErrorCode != "" {
			msg += " (" + f.ErrorCode
			if f.Script != "" {
				msg += ", " + f.Script
			}
			msg += ")"
		}
		if n := len(e.Instances) - 1; n > 0 {
			msg += fmt.Sprintf(" and %d more instance(s)", n)
		}
	} else if e.Code != "" {
		msg += ": " + e.Code
	}
	return msg + "; traffic was not switched"
}

// maxDetailed bounds how many failed instances Report details: the first
// few say what went wrong, the rest would only scroll it away.
const maxDetailed = 3

// Report is the full diagnostics: the deployment's error, then each failed
// instance's lifecycle event, error code, script, message and log tail.
func (e *FailedError) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment %s: %s", e.ID, e.Status)
	if e.Code != "" || e.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimSpace(e.Code+" "+e.Message))
	}
	b.WriteByte('\n')
	for i, f := range e.Instances {
		if i == maxDetailed {
			fmt.Fprintf(&b, "... and %d more failed instance(s)\n", len(e.Instances)-maxDetailed)
			break
		}
		fmt.Fprintf(&b, "failed instance: %s\n", f.Instance)
		if f.Event != "" {
			fmt.Fprintf(&b, "  lifecycle event: %s\n", f.Event)
		}
		if f.ErrorCode != "" {
			fmt.Fprintf(&b, "  error code:      %s\n", f.ErrorCode)
		}
		if f.Script != "" {
			fmt.Fprintf(&b, "  script:          %s\n", f.Script)
		}
		if f.Message != "" {
			fmt.Fprintf(&b, "  message:         %s\n", strings.TrimSpace(f.Message))
		}
		if tail := strings.TrimRight(f.LogTail, "\n"); tail != "" {
			b.WriteString("  log tail:\n")
			for _, l := range strings.Split(tail, "\n") {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	if e.NoInstances != "" {
		fmt.Fprintf(&b, "instance diagnostics unavailable: %s\n", e.NoInstances)
	} else if len(e.Instances) == 0 && e.Status != string(types.DeploymentStatusStopped) {
		b.WriteString("no instance reported a failure (see the deployment in the CodeDeploy console)\n")
	}
	return b.String()
}
