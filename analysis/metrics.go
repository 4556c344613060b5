package analysis

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/oops-deploy/oops/release"
)

// metricCheck judges a color on its target group's CloudWatch metrics
// (an ALB): HTTPCode_Target_5XX_Count over RequestCount, and the p99 of
// TargetResponseTime, since the previous measurement.
type metricCheck struct {
	cw        CloudWatchAPI
	namespace string
	dims      []types.Dimension
	o         Options
	since     time.Time
	now       func() time.Time
}

// MetricCheck judges the bake on CloudWatch metrics of namespace and dims
// (an ALB target group's) against o's thresholds, from now on. Metrics
// that cannot be read fail the measurement (as an unreadable counter
// does); a p99 CloudWatch has no value for is not judged.
func MetricCheck(cw CloudWatchAPI, namespace string, dims map[string]string, o Options) Check {
	o.fill()
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ds []types.Dimension
	for _, k := range keys {
		ds = append(ds, types.Dimension{Name: aws.String(k), Value: aws.String(dims[k])})
	}
	return &metricCheck{cw: cw, namespace: namespace, dims: ds, o: o, since: o.Now(), now: o.Now}
}

func (mc *metricCheck) Measure(ctx context.Context) release.Measurement {
	m := release.Measurement{Source: "cloudwatch"}
	end := mc.now()
	// One period covering the whole window, in whole minutes (ALB metrics
	// have a one-minute resolution).
	period := int32(max(60, (int(end.Sub(mc.since).Seconds())+59)/60*60))
	q := func(id, metric, stat string) types.MetricDataQuery {
		return types.MetricDataQuery{Id: aws.String(id), ReturnData: aws.Bool(true), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(mc.namespace), MetricName: aws.String(metric), Dimensions: mc.dims},
			Period: aws.Int32(period), Stat: aws.String(stat),
		}}
	}
	in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(mc.since), EndTime: aws.Time(end), MetricDataQueries: []types.MetricDataQuery{
		q("requests", "RequestCount", "Sum"), q("errors", "HTTPCode_Target_5XX_Count", "Sum"), q("p99", "TargetResponseTime", "p99"),
	}}
	vals := map[string][]float64{}
	for {
		out, err := mc.cw.GetMetricData(ctx, in)
		if err != nil {
			m.Verdict, m.Why = release.VerdictFail, "cannot read the target group's metrics: "+err.Error()
			return m
		}
		for _, r := range out.MetricDataResults {
			vals[aws.ToString(r.Id)] = append(vals[aws.ToString(r.Id)], r.Values...)
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	mc.since = end
	sum := func(id string) float64 {
		s := 0.0
		for _, v := range vals[id] {
			s += v
		}
		return s
	}
	reqs, errs := sum("requests"), sum("errors")
	m.Requests = uint64(reqs)
	if m.Requests == 0 || m.Requests < uint64(*mc.o.MinRequests) {
		m.Verdict = release.VerdictInconclusive
		m.Why = fmt.Sprintf("%d requests, fewer than min-requests %d", m.Requests, *mc.o.MinRequests)
		if m.Requests == 0 {
			m.Why = "no requests"
		}
		return m
	}
	rate := min(1, errs/reqs)
	m.ErrorRate = &rate
	if p := vals["p99"]; len(p) > 0 {
		worst := p[0]
		for _, v := range p {
			worst = max(worst, v)
		}
		ms := worst * 1000 // TargetResponseTime is in seconds
		m.P99MS = &ms
	}
	m.Verdict = release.VerdictPass
	switch {
	case mc.o.MaxErrorRate != nil && rate > *mc.o.MaxErrorRate:
		m.Verdict = release.VerdictFail
		m.Why = fmt.Sprintf("5xx %s of %d requests, over max-error-rate %s", pct(rate), m.Requests, pct(*mc.o.MaxErrorRate))
	case mc.o.MaxP99 > 0 && m.P99MS != nil && *m.P99MS > float64(mc.o.MaxP99)/float64(time.Millisecond):
		m.Verdict = release.VerdictFail
		m.Why = fmt.Sprintf("p99 %s over %d requests, over max-latency-p99 %s", ms(*m.P99MS), m.Requests, mc.o.MaxP99)
	}
	return m
}
