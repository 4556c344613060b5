package analysis

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/oops-deploy/oops/release"
)

// CloudWatchAPI is the CloudWatch the bake reads: alarms, and (for the
// ALB's target groups) metric statistics.
type CloudWatchAPI interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

var _ CloudWatchAPI = (*cloudwatch.Client)(nil)

// QueryProtocol makes a CloudWatch client speak awsQuery, which CloudWatch
// still serves, instead of the SDK's default Smithy RPCv2 CBOR, which
// moto does not: oops then runs against AWS exactly what its tests run
// against moto.
func QueryProtocol(o *cloudwatch.Options) {
	o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
}

// alarmCheck fails while any of its alarms is in ALARM.
type alarmCheck struct {
	cw           CloudWatchAPI
	names        []string
	ignoreErrors bool
}

// AlarmCheck judges the bake on CloudWatch alarms: any of names in ALARM
// fails a measurement. An alarm that cannot be read (an error, or no such
// alarm) fails it too, closed, unless ignoreErrors: then that measurement
// is inconclusive.
func AlarmCheck(cw CloudWatchAPI, names []string, ignoreErrors bool) Check {
	return &alarmCheck{cw: cw, names: names, ignoreErrors: ignoreErrors}
}

func (a *alarmCheck) Measure(ctx context.Context) release.Measurement {
	m := release.Measurement{Source: "alarms"}
	unreadable := func(why string) release.Measurement {
		m.Verdict, m.Why = release.VerdictFail, why+" (fails closed; alarms-ignore-errors makes it inconclusive)"
		if a.ignoreErrors {
			m.Verdict, m.Why = release.VerdictInconclusive, why+" (alarms-ignore-errors)"
		}
		return m
	}
	var got []types.MetricAlarm
	in := &cloudwatch.DescribeAlarmsInput{AlarmNames: a.names, AlarmTypes: []types.AlarmType{types.AlarmTypeMetricAlarm, types.AlarmTypeCompositeAlarm}}
	var composite []types.CompositeAlarm
	for {
		out, err := a.cw.DescribeAlarms(ctx, in)
		if err != nil {
			return unreadable("cannot read the alarms: " + err.Error())
		}
		got = append(got, out.MetricAlarms...)
		composite = append(composite, out.CompositeAlarms...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	state := map[string]types.StateValue{}
	for _, al := range got {
		state[aws.ToString(al.AlarmName)] = al.StateValue
	}
	for _, al := range composite {
		state[aws.ToString(al.AlarmName)] = al.StateValue
	}
	var firing, missing []string
	for _, n := range a.names {
		switch s, ok := state[n]; {
		case !ok:
			missing = append(missing, n)
		case s == types.StateValueAlarm:
			firing = append(firing, n)
		}
	}
	slices.Sort(firing)
	switch {
	case len(firing) > 0:
		m.Verdict, m.Why = release.VerdictFail, fmt.Sprintf("alarm %s in ALARM", strings.Join(firing, ", "))
	case len(missing) > 0:
		return unreadable(fmt.Sprintf("no alarm %s in CloudWatch", strings.Join(missing, ", ")))
	default:
		m.Verdict = release.VerdictPass
	}
	return m
}
