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
	// Analysis is the warm-up and the bake of the color switched to, when
	// there was one (a pointer, like Hooks).
	Analysis *Analysis `json:"analysis,omitempty"`
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

// Verdicts of a bake and of each of its measurements.
const (
	VerdictPass         = "pass"
	VerdictFail         = "fail"
	VerdictInconclusive = "inconclusive"
)

// Analysis is what oops measured of the color it switched to: warm-up
// before the switch, the bake's measurements after it, and the verdict.
type Analysis struct {
	// WarmUp are the requests sent to the color before it took traffic.
	WarmUp *WarmUp `json:"warm_up,omitempty"`
	// Bake is how long the color was to be watched; Verdict how it ended:
	// pass, fail (switched back), inconclusive (too few requests to judge;
	// the switch stands), or "" when the bake did not end (interrupted).
	Bake    string `json:"bake,omitempty"`
	Verdict string `json:"verdict,omitempty"`
	// Worst is the worst number measured, as the history table shows it
	// ("5xx 34.2% of 812").
	Worst        string        `json:"worst,omitempty"`
	Measurements []Measurement `json:"measurements,omitempty"`
}

// WarmUp is the warm-up requests sent and how many failed (no answer or 5xx).
type WarmUp struct {
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
}

// Measurement is one analysis-interval of the bake.
type Measurement struct {
	At time.Time `json:"at"`
	// Source is where the numbers come from: "proxy" (the local proxy's
	// per-color counters).
	Source string `json:"source"`
	// Weight is the share of traffic the color had, during a canary step.
	Weight   int    `json:"weight,omitempty"`
	Requests uint64 `json:"requests"`
	// ErrorRate is the share of 5xx; P99MS the 99th percentile latency,
	// in milliseconds; nil when there were no requests.
	ErrorRate *float64 `json:"error_rate,omitempty"`
	P99MS     *float64 `json:"p99_ms,omitempty"`
	Verdict   string   `json:"verdict"`
	// Why says what failed, or why it was inconclusive.
	Why string `json:"why,omitempty"`
}
