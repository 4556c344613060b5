package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oops-deploy/oops/config"
)

// TestHooksAndNotifyParsedAtLoad: hooks, notify and their timeouts are
// checked when .oopsrc loads, each problem at its own line:column, with
// the list of stages or the forms a destination takes.
func TestHooksAndNotifyParsedAtLoad(t *testing.T) {
	tests := []parseCase{
		{"hooks ok", `"hooks": {"pre-switch": ["./smoke.sh", "--fast"], "on-failure": ["page"]}}`, ""},
		{"unknown stage", "\"hooks\": {\n  \"pre-swich\": [\"x\"]}}", `/p/.oopsrc:3:3: hooks: unknown stage "pre-swich": the stages are pre-deploy, post-install, pre-switch, post-switch, on-revert, on-failure, post-rollback`},
		{"empty command", `"hooks": {"post-switch": []}}`, `/p/.oopsrc:2:11: hooks: post-switch names no program`},
		{"blank program", `"hooks": {"post-switch": [" ", "x"]}}`, `hooks: post-switch names no program`},
		{"a string, not a list", `"hooks": {"post-switch": "./x.sh"}}`, `/p/.oopsrc:2:1: "hooks" must be an object of argument lists, not an object`},
		{"hooks a list", `"hooks": ["./x.sh"]}`, `"hooks" must be an object of argument lists, not an array`},
		{"hook-timeout", `"hook-timeout": "forever"}`, `/p/.oopsrc:2:1: hook-timeout "forever" is not a positive duration`},
		{"notify ok", `"notify": ["https://hooks.slack.com/services/T/B/x", "http://127.0.0.1:9/h", "sns:arn:aws:sns:us-east-1:123456789012:deploys"]}`, ""},
		{"notify bad url", "\"notify\": [\"https://ok.example\",\n   \"ftp://x\"]}", `/p/.oopsrc:3:4: notify: "ftp://x" is neither an http(s) URL nor sns:<topic-arn>`},
		{"notify bad arn", `"notify": ["sns:deploys"]}`, `notify: "sns:deploys" is not an SNS topic ARN`},
		{"notify not an ARN of SNS", `"notify": ["sns:arn:aws:sqs:us-east-1:123456789012:q"]}`, `is not an SNS topic ARN`},
		{"notify a string", `"notify": "https://x"}`, `"notify" must be an array of strings, not a string`},
		{"notify-timeout", `"notify-timeout": "0s"}`, `notify-timeout "0s" is not a positive duration`},
		{"notify-timeout too long", `"notify-timeout": "5m"}`, `/p/.oopsrc:2:1: notify-timeout "5m" is longer than 1m0s`},
	}
	checkParseCases(t, tests)
}

func TestHooksAndNotifyValues(t *testing.T) {
	c, err := config.Parse("/p/.oopsrc", []byte(`{"application-name": "a", "store": "s",
		"hooks": {"pre-switch": ["./smoke.sh", "$OOPS_TO_COLOR"]}, "hook-timeout": "90s",
		"notify": ["https://hooks.slack.com/services/T0/B0/secret", "https://example.com/h?token=secret", "sns:arn:aws:sns:eu-west-1:123456789012:deploys"],
		"notify-timeout": "3s"}`))
	if err != nil {
		t.Fatal(err)
	}
	v := c.Values
	if !slices.Equal(v.Hooks["pre-switch"], []string{"./smoke.sh", "$OOPS_TO_COLOR"}) || len(v.Hooks) != 1 {
		t.Errorf("hooks = %v", v.Hooks)
	}
	if v.HookTimeout != 90*time.Second || v.NotifyTimeout != 3*time.Second {
		t.Errorf("timeouts = %s, %s; want 1m30s, 3s", v.HookTimeout, v.NotifyTimeout)
	}
	if len(v.Notify) != 3 {
		t.Fatalf("notify = %+v", v.Notify)
	}
	slack, hook, sns := v.Notify[0], v.Notify[1], v.Notify[2]
	if !slack.Slack || hook.Slack || sns.TopicARN != "arn:aws:sns:eu-west-1:123456789012:deploys" {
		t.Errorf("notify = %+v", v.Notify)
	}
	// Where a destination is named (warnings, history), its secret is not.
	for _, d := range v.Notify {
		if strings.Contains(d.String(), "secret") {
			t.Errorf("%q shows the webhook's secret", d.String())
		}
	}
}

// TestApprovalKeys: require-approval and approvers are checked at load.
func TestApprovalKeys(t *testing.T) {
	base := `{"application-name": "a", "store": "s",` + "\n"
	tests := []struct{ rest, want string }{
		{`"require-approval": true}`, ""},
		{`"require-approval": true, "approvers": ["grace", "arn:aws:sts::1:assumed-role/Release/*"]}`, ""},
		{`"require-approval": "yes"}`, `"require-approval" must be true or false, not a string`},
		{"\"require-approval\": true, \"approvers\": [\"grace\",\n \"\"]}", `/p/.oopsrc:3:2: approvers: "" is not an identity`},
		{`"approvers": ["grace"]}`, `/p/.oopsrc:2:1: approvers is set but require-approval is not true`},
	}
	for _, tc := range tests {
		c, err := config.Parse("/p/.oopsrc", []byte(base+tc.rest))
		if tc.want == "" {
			if err != nil || !c.RequireApproval {
				t.Errorf("%s: %v", tc.rest, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.rest, err, tc.want)
		}
	}
}
