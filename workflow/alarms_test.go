package workflow

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/oops-deploy/oops/analysis"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// flipAfter is CloudWatch that sets an alarm to ALARM (set-alarm-state)
// right after the bake's first reading: the alarm goes off during the
// bake, at a point no clock decides.
type flipAfter struct {
	*cloudwatch.Client
	t     *testing.T
	alarm string
	reads atomic.Int64
}

func (f *flipAfter) DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	out, err := f.Client.DescribeAlarms(ctx, in, opts...)
	if f.reads.Add(1) == 1 {
		if _, serr := f.Client.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(f.alarm), StateValue: types.StateValueAlarm, StateReason: aws.String("5xx over 10")}); serr != nil {
			f.t.Errorf("set-alarm-state: %v", serr)
		}
	}
	return out, err
}

// TestBakeOnAlarms: on CloudWatch (moto), an alarm that goes to ALARM
// during the bake switches back (exit 10), the measurements in history;
// an alarm that cannot be read fails closed and switches back too, unless
// alarms-ignore-errors (then the bake is inconclusive and the switch
// stands).
func TestBakeOnAlarms(t *testing.T) {
	moto := awstest.Start(t)
	cw := cloudwatch.NewFromConfig(moto.Config(), analysis.QueryProtocol)
	ctx := awstest.Ctx(t)
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("api-5xx"), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
		Statistic: types.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
		ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	const rc = `{"application-name": "api", "store": "rel", "bake": "1s", "analysis-interval": "100ms", "failure-limit": 2, "alarms": [%s]%s}`
	tests := []struct {
		name, alarms, extra string
		verdict             string
		why                 string
	}{
		{"alarm goes off", `"api-5xx"`, "", release.VerdictFail, "alarm api-5xx in ALARM"},
		{"unreadable fails closed", `"api-5xx-typo"`, "", release.VerdictFail, "no alarm api-5xx-typo in CloudWatch (fails closed"},
		{"unreadable, ignored", `"api-5xx-typo"`, `, "alarms-ignore-errors": true`, release.VerdictInconclusive, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, strings.Replace(strings.Replace(rc, "%s", tc.alarms, 1), "%s", tc.extra, 1))
			if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("api-5xx"), StateValue: types.StateValueOk, StateReason: aws.String("quiet")}); err != nil {
				t.Fatal(err)
			}
			fx.d.CloudWatch = func(context.Context) (analysis.CloudWatchAPI, error) {
				return &flipAfter{Client: cw, t: t, alarm: "api-5xx"}, nil
			}
			b := newBoard(fx) // counts no requests: the alarms alone judge
			_, err := fx.runner().Switch(context.Background(), b, SwitchRequest{Action: release.ActionPromote, Command: "oops promote", Confirm: yes})
			back := slices.Contains(b.calls, "apply blue 100")
			ev := history(t, fx)[0]
			if ev.Analysis == nil || ev.Analysis.Verdict != tc.verdict {
				t.Fatalf("analysis %+v (err %v)", ev.Analysis, err)
			}
			if tc.verdict != release.VerdictFail {
				if err != nil || back {
					t.Fatalf("%v, switched back %v: want the switch to stand", err, back)
				}
				return
			}
			if !errors.Is(err, target.ErrVerifyFailed) || !back || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("%v, switched back %v; want exit 10 for %q", err, back, tc.why)
			}
			last := ev.Analysis.Measurements[len(ev.Analysis.Measurements)-1]
			if last.Source != "alarms" || !strings.Contains(last.Why, tc.why) {
				t.Errorf("last measurement %+v", last)
			}
		})
	}
}
