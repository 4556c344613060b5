package analysis

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
)

// putAlarm creates a metric alarm on moto in state.
func putAlarm(t *testing.T, cw *cloudwatch.Client, name string, state types.StateValue) {
	t.Helper()
	ctx := awstest.Ctx(t)
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(name), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
		Statistic: types.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
		ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	setAlarm(t, cw, name, state)
}

func setAlarm(t *testing.T, cw *cloudwatch.Client, name string, state types.StateValue) {
	t.Helper()
	if _, err := cw.SetAlarmState(awstest.Ctx(t), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: state, StateReason: aws.String("test")}); err != nil {
		t.Fatal(err)
	}
}

// TestAlarmCheck: on CloudWatch (moto), an alarm in ALARM fails a
// measurement, OK and INSUFFICIENT_DATA pass; an alarm that cannot be read
// (no such alarm, CloudWatch unreachable) fails closed, or is inconclusive
// with alarms-ignore-errors.
func TestAlarmCheck(t *testing.T) {
	moto := awstest.Start(t)
	cw := cloudwatch.NewFromConfig(moto.Config(), QueryProtocol)
	putAlarm(t, cw, "api-5xx", types.StateValueOk)
	putAlarm(t, cw, "api-p99", types.StateValueInsufficientData)
	putAlarm(t, cw, "db-cpu", types.StateValueAlarm)
	// A loopback port nothing listens on: CloudWatch unreachable.
	down := cloudwatch.NewFromConfig(awstest.Config("http://127.0.0.1:1"), QueryProtocol)
	tests := []struct {
		name    string
		cw      CloudWatchAPI
		alarms  []string
		ignore  bool
		verdict string
		why     string
	}{
		{"all OK", cw, []string{"api-5xx", "api-p99"}, false, release.VerdictPass, ""},
		{"one in ALARM", cw, []string{"api-5xx", "db-cpu"}, false, release.VerdictFail, "alarm db-cpu in ALARM"},
		{"no such alarm fails closed", cw, []string{"api-5xx", "api-5XX"}, false, release.VerdictFail, "no alarm api-5XX in CloudWatch (fails closed"},
		{"no such alarm, ignored", cw, []string{"api-5XX"}, true, release.VerdictInconclusive, "no alarm api-5XX in CloudWatch (alarms-ignore-errors)"},
		{"unreachable fails closed", down, []string{"api-5xx"}, false, release.VerdictFail, "cannot read the alarms"},
		{"unreachable, ignored", down, []string{"api-5xx"}, true, release.VerdictInconclusive, "cannot read the alarms"},
		{"ALARM counts even when errors are ignored", cw, []string{"db-cpu"}, true, release.VerdictFail, "alarm db-cpu in ALARM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := AlarmCheck(tc.cw, tc.alarms, tc.ignore).Measure(context.Background())
			if m.Verdict != tc.verdict || !strings.Contains(m.Why, tc.why) || m.Source != "alarms" {
				t.Fatalf("measurement %+v, want %s with %q", m, tc.verdict, tc.why)
			}
		})
	}
}
