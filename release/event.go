package release

import "time"

// Actions recorded in history.
const (
	ActionPublish  = "publish"
	ActionDeploy   = "deploy"
	ActionSwitch   = "switch"
	ActionRollback = "rollback"
	ActionRepair   = "repair"
	ActionShift    = "shift"
	ActionPromote  = "promote"
	ActionPreview  = "off"
	ActionLock     = "lock"
	ActionApprove  = "approve"
	// ActionDownscale: the off color stood by at min-off-capacity.
	ActionDownscale = "downscale"
)

// Results of an action.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultRefused = "refused"
)

// Side is one end of a change of traffic.
type Side struct {
	Color  Color  `json:"color,omitempty"`
	Commit string `json:"commit,omitempty"`
}

// Event is one line of history: who did what, when, why, and how it ended.
type Event struct {
	ID         string    `json:"id,omitempty"`
	Time       time.Time `json:"time"`
	Action     string    `json:"action"`
	App        string    `json:"application"`
	Target     string    `json:"target,omitempty"`
	From       Side      `json:"from"`
	To         Side      `json:"to"`
	Who        string    `json:"who"`
	OSUser     string    `json:"os_user,omitempty"`
	Host       string    `json:"host,omitempty"`
	Reason     string    `json:"reason"`
	Result     string    `json:"result"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
	// Deployment is the CodeDeploy deployment id, where there was one.
	Deployment string `json:"deployment,omitempty"`
	// NoSwitch: the release was installed on To.Color but traffic stayed
	// on From (deploy --no-switch), so To never went live.
	NoSwitch bool `json:"no_switch,omitempty"`
	// Hooks are the .oopsrc hooks that ran for this change, in order (see
	// HookRuns, AddHook); NotifyFailed names the notify destinations that
	// did not take this event, after a retry. Pointers, nil when empty, so
	// that events stay comparable with ==.
	Hooks        *[]HookRun `json:"hooks,omitempty"`
	NotifyFailed *[]string  `json:"notify_failed,omitempty"`
}

// HookRuns are the hooks that ran for the change.
func (e *Event) HookRuns() []HookRun {
	if e.Hooks == nil {
		return nil
	}
	return *e.Hooks
}

// AddHook records a hook that ran. The list is copied, never shared with
// a copy of e made before.
func (e *Event) AddHook(h HookRun) {
	runs := append(append([]HookRun(nil), e.HookRuns()...), h)
	e.Hooks = &runs
}

// HookRun is one hook that ran for a change.
type HookRun struct {
	Stage string `json:"stage"`
	// Exit is its exit status; -1 when it did not start or was killed.
	Exit int `json:"exit"`
	// Error says why it failed, when it did ("exit status 3", "killed
	// after 1m0s").
	Error string `json:"error,omitempty"`
	// Tail is the end of its output (stdout and stderr).
	Tail string `json:"tail,omitempty"`
}
