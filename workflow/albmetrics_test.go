package workflow

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/oops-deploy/oops/analysis"
	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/alb"
)

// albTraffic is CloudWatch whose ALB target-group metrics are written
// (put-metric-data) right after each of the bake's readings: the new
// color's requests of the interval that follows, with errs 5xx of every
// 100.
type albTraffic struct {
	*cloudwatch.Client
	t    *testing.T
	dims []types.Dimension
	errs float64
	// latency is every request's TargetResponseTime, in seconds.
	latency float64
	n       atomic.Int64
}

func (a *albTraffic) GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	out, err := a.Client.GetMetricData(ctx, in, opts...)
	a.n.Add(1)
	now := time.Now()
	datum := func(name string, v float64, unit types.StandardUnit) types.MetricDatum {
		return types.MetricDatum{MetricName: aws.String(name), Dimensions: a.dims, Value: aws.Float64(v), Timestamp: aws.Time(now), Unit: unit}
	}
	if _, perr := a.Client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/ApplicationELB"), MetricData: []types.MetricDatum{
		datum("RequestCount", 100, types.StandardUnitCount), datum("HTTPCode_Target_5XX_Count", a.errs, types.StandardUnitCount),
		datum("TargetResponseTime", a.latency, types.StandardUnitSeconds),
	}}); perr != nil {
		a.t.Errorf("put-metric-data: %v", perr)
	}
	return out, err
}

// TestBakeOnALBMetrics: on an ALB (moto), the bake reads the new color's
// target-group metrics in CloudWatch: 5xx over RequestCount past
// max-error-rate switches back (exit 10); a healthy target group passes.
func TestBakeOnALBMetrics(t *testing.T) {
	moto := awstest.Start(t)
	cfg := moto.Config()
	ctx := awstest.Ctx(t)
	lb, err := albtest.New(ctx, cfg, albtest.Options{Name: "bake", Weighted: true})
	if err != nil {
		t.Fatal(err)
	}
	cw := cloudwatch.NewFromConfig(cfg, analysis.QueryProtocol)
	for _, tc := range []struct {
		name          string
		errs, latency float64
		verdict, why  string
	}{
		{"40% 5xx reverts", 40, 0.02, release.VerdictFail, "5xx 40.0% of 100 requests, over max-error-rate 5.0%"},
		{"a slow p99 reverts", 0, 1.5, release.VerdictFail, "p99 1.5s over 100 requests, over max-latency-p99 800ms"},
		{"1% 5xx passes", 1, 0.02, release.VerdictPass, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, err := alb.New(elbv2.NewFromConfig(cfg), alb.Config{ListenerARN: lb.Listeners[80]})
			if err != nil {
				t.Fatal(err)
			}
			st, err := at.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			to := st.Off.Color
			ns, dims, err := at.MetricDimensions(ctx, to)
			if err != nil || ns != "AWS/ApplicationELB" || !strings.HasPrefix(dims["TargetGroup"], "targetgroup/bake-") || !strings.HasPrefix(dims["LoadBalancer"], "app/bake/") {
				t.Fatalf("dimensions %s %v: %v", ns, dims, err)
			}
			// moto keeps metrics by the second: intervals longer than one.
			fx := newFixture(t, `{"application-name": "api", "store": "rel", "bake": "4s", "analysis-interval": "1100ms", "failure-limit": 2, "max-error-rate": "5%", "max-latency-p99": "800ms", "min-requests": 10}`)
			tr := &albTraffic{Client: cw, t: t, errs: tc.errs, latency: tc.latency, dims: []types.Dimension{
				{Name: aws.String("LoadBalancer"), Value: aws.String(dims["LoadBalancer"])}, {Name: aws.String("TargetGroup"), Value: aws.String(dims["TargetGroup"])}}}
			fx.d.CloudWatch = func(context.Context) (analysis.CloudWatchAPI, error) { return tr, nil }
			_, err = fx.runner().Switch(context.Background(), at, SwitchRequest{To: to, Action: release.ActionPromote, Command: "oops promote", Force: true, Confirm: yes})
			ev := history(t, fx)[0]
			if ev.Analysis == nil || ev.Analysis.Verdict != tc.verdict {
				t.Fatalf("analysis %+v: %v", ev.Analysis, err)
			}
			after, serr := at.State(ctx)
			if serr != nil {
				t.Fatal(serr)
			}
			if tc.verdict == release.VerdictPass {
				if err != nil || after.Live.Color != to {
					t.Fatalf("%v, live %s: want the switch to stand", err, after.Live.Color)
				}
				return
			}
			if !errors.Is(err, target.ErrVerifyFailed) || after.Live.Color == to || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("%v, live %s: want switched back", err, after.Live.Color)
			}
			if m := ev.Analysis.Measurements[len(ev.Analysis.Measurements)-1]; m.Source != "cloudwatch" || m.Requests != 100 || m.P99MS == nil || *m.P99MS != tc.latency*1000 {
				t.Errorf("last measurement %+v", m)
			}
		})
	}
}
