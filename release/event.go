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
}
