package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/release"
)

// TestALBScripts runs the ALB scripts in testdata/alb: the real oops
// against one moto, each script in its own AWS account behind its own
// fault proxy.
func TestALBScripts(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	m := awstest.Start(t)
	runFaultScripts(t, "testdata/alb", m.URL, 200000000000, albScriptCmds(), func(env *testscript.Env) {
		env.Values[albKey{}] = &albScript{albs: map[string]*albtest.ALB{}}
	})
}

type albKey struct{}

// albScript is one script's ALBs.
type albScript struct {
	mu   sync.Mutex
	albs map[string]*albtest.ALB
}

// albScriptCmds are the commands of the ALB scripts:
//
//	alb-fixture NAME [ports=80,443] [live=COLOR] [weighted] [rule] [untagged]
//	        an ALB (albtest.Options) with target groups NAME-blue and
//	        NAME-green; $LISTENER_<port> is each listener's ARN
//	        asg: colors are auto-scaling groups NAME-blue-asg and
//	        NAME-green-asg; off=N sizes the off one (default 0)
//	imds-fake NAME COLOR [tags]
//	        an instance metadata service on 127.0.0.1 ($IMDS) for the first
//	        instance of COLOR's group: its instance-id, and with tags its
//	        oops:commit tag (instance metadata tags on)
//	asg-show NAME       print each group's size, launch template version,
//	                    and its instances (version, lifecycle, oops:commit)
//	alb-show NAME       print what each listener and rule forwards and the
//	                    target groups' oops tags, one per line
//	alb-forward NAME PORT COLOR PERCENT
//	        point a listener at PERCENT of COLOR, as a hand edit or an
//	        interrupted tool would leave it
//	alb-tag NAME COLOR KEY=VALUE  tag COLOR's target group
//	alb-calls           print the API calls made through the proxy, then forget them
//	alb-fault ACTION MODE [skip=N] [times=N]
//	        MODE is fail (500), throttle, denied, cut-after (applied, answer
//	        lost), hang (never forwarded), or, for DescribeTargetHealth,
//	        unhealthy or unused: a simulation, as moto reports every
//	        registered target healthy; a fault that never applies fails the
//	        script at its end
//	alb-oopsrc KEY=VALUE...  write .oopsrc (values after $VAR expansion;
//	                         digits become numbers)
//	alb-fault-wait ACTION  wait until a hung ACTION has arrived at the proxy
//	alb-fault-clear        remove every fault
func albScriptCmds() map[string]scriptCmd {
	state := func(ts *testscript.TestScript) *albScript { return ts.Value(albKey{}).(*albScript) }
	alb := func(ts *testscript.TestScript, name string) *albtest.ALB {
		s := state(ts)
		s.mu.Lock()
		defer s.mu.Unlock()
		a := s.albs[name]
		if a == nil {
			ts.Fatalf("no ALB %q: run alb-fixture first", name)
		}
		return a
	}
	return map[string]scriptCmd{
		"alb-fixture": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 1 {
				ts.Fatalf("usage: alb-fixture NAME [ports=80,443] [live=COLOR] [weighted] [rule] [untagged]")
			}
			o := albtest.Options{Name: args[0]}
			for _, a := range args[1:] {
				k, v, _ := strings.Cut(a, "=")
				switch k {
				case "ports":
					for _, p := range strings.Split(v, ",") {
						n, err := strconv.Atoi(p)
						ts.Check(err)
						o.Ports = append(o.Ports, n)
					}
				case "live":
					o.Live = release.Color(v)
				case "weighted":
					o.Weighted = true
				case "rule":
					o.Rule = true
				case "untagged":
					o.Untagged = true
				case "asg":
					o.ASG = true
				case "off":
					n, err := strconv.Atoi(v)
					ts.Check(err)
					o.OffSize = n
				default:
					ts.Fatalf("alb-fixture: unknown option %q", a)
				}
			}
			s := state(ts)
			a, err := albtest.New(awsCtx(ts), awstest.Config(faultState(ts).moto), o)
			ts.Check(err)
			s.mu.Lock()
			s.albs[a.Name] = a
			s.mu.Unlock()
			for port, arn := range a.Listeners {
				ts.Setenv(fmt.Sprintf("LISTENER_%d", port), arn)
			}
		},
		"imds-fake": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 2 {
				ts.Fatalf("usage: imds-fake NAME COLOR [tags]")
			}
			url, err := fakeIMDS(ts, alb(ts, args[0]), release.Color(args[1]), len(args) > 2 && args[2] == "tags")
			ts.Check(err)
			ts.Setenv("IMDS", url)
		},
		"asg-show": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: asg-show NAME")
			}
			ts.Check(showGroups(ts, alb(ts, args[0])))
		},
		"asg-set": func(ts *testscript.TestScript, neg bool, args []string) {
			// Hand edits of a color's group: version=N points it at launch
			// template version N (a Terraform run), color=C retags it.
			noNeg(ts, neg)
			if len(args) != 3 {
				ts.Fatalf("usage: asg-set NAME COLOR version=N|color=C")
			}
			name := alb(ts, args[0]).ASGs[release.Color(args[1])]
			as := autoscaling.NewFromConfig(awstest.Config(faultState(ts).moto))
			switch k, v, _ := strings.Cut(args[2], "="); k {
			case "version":
				g, err := as.DescribeAutoScalingGroups(awsCtx(ts), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
				ts.Check(err)
				lt := &astypes.LaunchTemplateSpecification{LaunchTemplateId: g.AutoScalingGroups[0].LaunchTemplate.LaunchTemplateId, Version: aws.String(v)}
				_, err = as.UpdateAutoScalingGroup(awsCtx(ts), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), LaunchTemplate: lt})
				ts.Check(err)
			case "color":
				_, err := as.CreateOrUpdateTags(awsCtx(ts), &autoscaling.CreateOrUpdateTagsInput{Tags: []astypes.Tag{{
					Key: aws.String("oops:color"), Value: aws.String(v), ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group"), PropagateAtLaunch: aws.Bool(false)}}})
				ts.Check(err)
			default:
				ts.Fatalf("asg-set: unknown option %q", args[2])
			}
		},
		"alb-show": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: alb-show NAME")
			}
			a, cfg := alb(ts, args[0]), awstest.Config(faultState(ts).moto)
			api := elbv2.NewFromConfig(cfg)
			ls, err := api.DescribeListeners(awsCtx(ts), &elbv2.DescribeListenersInput{LoadBalancerArn: aws.String(a.ARN)})
			ts.Check(err)
			for _, l := range ls.Listeners {
				w, err := a.Weights(awsCtx(ts), cfg, int(aws.ToInt32(l.Port)))
				ts.Check(err)
				fmt.Fprintf(ts.Stdout(), "listener %s:%d blue=%d green=%d\n", l.Protocol, aws.ToInt32(l.Port), w["blue"], w["green"])
			}
			if a.Rule != "" {
				w, err := a.RuleWeights(awsCtx(ts), cfg)
				ts.Check(err)
				fmt.Fprintf(ts.Stdout(), "rule blue=%d green=%d\n", w["blue"], w["green"])
			}
			for _, c := range []release.Color{release.Blue, release.Green} {
				for _, k := range []string{"oops:commit", "oops:canary-base"} {
					v, err := a.Tag(awsCtx(ts), cfg, c, k)
					ts.Check(err)
					if v != "" {
						fmt.Fprintf(ts.Stdout(), "tag %s %s=%s\n", c, k, v)
					}
				}
			}
		},
		"alb-forward": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 4 {
				ts.Fatalf("usage: alb-forward NAME PORT COLOR PERCENT")
			}
			port, err := strconv.Atoi(args[1])
			ts.Check(err)
			pct, err := strconv.Atoi(args[3])
			ts.Check(err)
			ts.Check(alb(ts, args[0]).SetForward(awsCtx(ts), awstest.Config(faultState(ts).moto), port, release.Color(args[2]), pct))
		},
		"alb-tag": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 3 {
				ts.Fatalf("usage: alb-tag NAME COLOR KEY=VALUE")
			}
			k, v, _ := strings.Cut(args[2], "=")
			_, err := elbv2.NewFromConfig(awstest.Config(faultState(ts).moto)).AddTags(awsCtx(ts), &elbv2.AddTagsInput{
				ResourceArns: []string{alb(ts, args[0]).Groups[release.Color(args[1])]},
				Tags:         []types.Tag{{Key: aws.String(k), Value: aws.String(v)}},
			})
			ts.Check(err)
		},
		"alb-calls": callsCmd("GetCallerIdentity"),
		"alb-fault": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 2 {
				ts.Fatalf("usage: alb-fault ACTION MODE [skip=N] [times=N]")
			}
			r := faultproxy.Rule{Action: args[0]}
			for _, a := range args[2:] {
				k, v, _ := strings.Cut(a, "=")
				n, err := strconv.Atoi(v)
				ts.Check(err)
				switch k {
				case "skip":
					r.Skip = n
				case "times":
					r.Times = n
				default:
					ts.Fatalf("alb-fault: unknown option %q", a)
				}
			}
			addFault(ts, r, args[1], func(mode string, r *faultproxy.Rule) bool {
				switch mode {
				case "fail":
					r.Status, r.Body = http.StatusInternalServerError, faultproxy.QueryError("InternalFailure", "injected by the test")
				case "unhealthy":
					r.Status, r.Body = http.StatusOK, albtest.HealthBody("unhealthy", "Target.FailedHealthChecks", "10.0.1.110", "10.0.1.111")
				case "unused":
					r.Status, r.Body = http.StatusOK, albtest.HealthBody("unused", "Target.NotInUse", "10.0.1.110", "10.0.1.111")
				default:
					return false
				}
				return true
			})
		},
		"alb-oopsrc": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			cfg := map[string]any{}
			for _, kv := range args {
				k, v, _ := strings.Cut(kv, "=")
				cfg[k] = v
				if n, err := strconv.Atoi(v); err == nil {
					cfg[k] = n
				}
			}
			b, err := json.MarshalIndent(cfg, "", "  ")
			ts.Check(err)
			ts.Check(os.WriteFile(ts.MkAbs(".oopsrc"), b, 0o644))
		},
		"alb-fault-wait":  faultWait,
		"alb-fault-clear": faultClear,
	}
}

// showGroups prints a's auto-scaling groups, read straight from moto.
func showGroups(ts *testscript.TestScript, a *albtest.ALB) error {
	cfg := awstest.Config(faultState(ts).moto)
	as, ec := autoscaling.NewFromConfig(cfg), ec2.NewFromConfig(cfg)
	for _, c := range []release.Color{release.Blue, release.Green} {
		out, err := as.DescribeAutoScalingGroups(awsCtx(ts), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{a.ASGs[c]}})
		if err != nil {
			return err
		}
		g := out.AutoScalingGroups[0]
		fmt.Fprintf(ts.Stdout(), "group %s desired=%d min=%d version=%s\n", c, aws.ToInt32(g.DesiredCapacity), aws.ToInt32(g.MinSize), aws.ToString(g.LaunchTemplate.Version))
		for _, in := range g.Instances {
			tags, err := ec.DescribeTags(awsCtx(ts), &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
				{Name: aws.String("resource-id"), Values: []string{aws.ToString(in.InstanceId)}},
				{Name: aws.String("key"), Values: []string{"oops:commit"}},
			}})
			if err != nil {
				return err
			}
			commit := "-"
			if len(tags.Tags) > 0 {
				commit = aws.ToString(tags.Tags[0].Value)
			}
			fmt.Fprintf(ts.Stdout(), "instance %s version=%s %s commit=%s\n", c, aws.ToString(in.LaunchTemplate.Version), in.LifecycleState, commit)
		}
	}
	return nil
}

// fakeIMDS serves, on 127.0.0.1, the metadata of the first instance of
// c's group (IMDSv2: a token first), until the script ends.
func fakeIMDS(ts *testscript.TestScript, a *albtest.ALB, c release.Color, tags bool) (string, error) {
	cfg := awstest.Config(faultState(ts).moto)
	out, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(awsCtx(ts), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{a.ASGs[c]}})
	if err != nil {
		return "", err
	}
	if len(out.AutoScalingGroups) == 0 || len(out.AutoScalingGroups[0].Instances) == 0 {
		return "", fmt.Errorf("group %s has no instances", a.ASGs[c])
	}
	id := aws.ToString(out.AutoScalingGroups[0].Instances[0].InstanceId)
	paths := map[string]string{"instance-id": id}
	if tags {
		tt, err := ec2.NewFromConfig(cfg).DescribeTags(awsCtx(ts), &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
			{Name: aws.String("resource-id"), Values: []string{id}}, {Name: aws.String("key"), Values: []string{"oops:commit"}}}})
		if err != nil {
			return "", err
		}
		for _, t := range tt.Tags {
			paths["tags/instance/oops:commit"] = aws.ToString(t.Value)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			w.Write([]byte("token"))
			return
		}
		v, ok := paths[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
		if !ok || r.Header.Get("X-Aws-Ec2-Metadata-Token") != "token" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(v))
	}))
	ts.Defer(srv.Close)
	return srv.URL, nil
}
