package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/internal/testport"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// awsScript is one script's emulated AWS: its own account in the shared
// moto (url), and the fault proxy oops talks to.
type awsScript struct {
	url   string
	proxy *faultproxy.Proxy
}

// awsCmds are testscript commands for scripts that run oops against moto.
// The scripts share one moto (started by the first aws-start, stopped after
// the last script using it), each as its own AWS account, so they run in
// parallel without seeing each other's ELBs or deployments; S3 bucket names
// are global, so each script names its own. Scripts using them start with
// "[!moto] skip" (see awsCondition).
//
//	aws-start                      an account in moto + a fault proxy; AWS_* point oops at
//	                               the proxy (through an IAM call recorder: the script ends
//	                               by checking oops's calls against oops iam-policy);
//	                               $MOTO_ACCOUNT_URL is the account without the proxy
//	elb-create NAME [live=COLOR]   Classic ELB with listeners 80/443 and tags
//	                               blue=$BLUE_PORT green=$GREEN_PORT (free loopback ports)
//	codedeploy-create APP GROUP    CodeDeploy application and deployment group
//	codedeploy-count APP GROUP N   the group has exactly N deployments
//	codedeploy-revision APP GROUP  print the last deployment's revision and description,
//	                               as moto stored them
//	s3-mb BUCKET                   an S3 bucket
//	simulate ACTION FILE [TIMES]   answer ACTION with FILE's JSON (moto does not run
//	                               deployments: their progress is simulated); a rule
//	                               that never applies fails the script at its end
//	serve-health PORT [STATUS]     a health endpoint on 127.0.0.1:PORT until the script ends;
//	                               again on the same PORT changes its STATUS
//	example NAME DEST              copy examples/NAME of this repository to DEST
//	aws-calls ACTION N             the proxy saw exactly N calls of ACTION
//	aws-wait ACTION                wait until the proxy has seen an ACTION call
//	aws-forget                     forget the calls seen and every simulate rule
func awsCmds() map[string]scriptCmd {
	var mu sync.Mutex
	running := map[*testscript.TestScript]*awsScript{}
	var shared *elbtest.Moto
	users, accounts := 0, 0
	health := map[healthKey]*atomic.Int32{}
	get := func(ts *testscript.TestScript) *awsScript {
		mu.Lock()
		defer mu.Unlock()
		a := running[ts]
		if a == nil {
			ts.Fatalf("run aws-start first")
		}
		return a
	}
	return map[string]scriptCmd{
		"aws-start": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			mu.Lock()
			if shared == nil {
				m, err := elbtest.StartServer()
				if err != nil {
					mu.Unlock()
					ts.Fatalf("start moto: %v", err)
				}
				shared = m
			}
			users++
			accounts++
			direct := accountProxy(shared.URL, fmt.Sprintf("%012d", 200000000000+accounts))
			p := faultproxy.New(direct.URL)
			running[ts] = &awsScript{url: direct.URL, proxy: p}
			mu.Unlock()
			ts.Defer(func() {
				p.Close()
				direct.Close()
				mu.Lock()
				delete(running, ts)
				if users--; users == 0 {
					shared.Stop()
					shared = nil
				}
				mu.Unlock()
				verifyAtEnd(ts.Value(scriptTKey{}).(testscript.T), p)
			})
			// Deferred after the proxies' close: the check of the calls
			// against oops iam-policy runs first.
			recordScript(ts, ts.Value(scriptTKey{}).(testscript.T), ts.Getenv("WORK"), p.URL)
			ts.Setenv("MOTO_ACCOUNT_URL", direct.URL)
		},
		"elb-create": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 1 {
				ts.Fatalf("usage: elb-create NAME [live=COLOR]")
			}
			a := get(ts)
			live := release.Blue
			for _, kv := range args[1:] {
				if c, ok := strings.CutPrefix(kv, "live="); ok {
					live = release.Color(c)
				}
			}
			blue, green := freePort(ts), freePort(ts)
			_, err := elbtest.Create(awsCtx(ts), awstest.Config(a.url), elbtest.Fixture{
				Name: args[0], Blue: strconv.Itoa(blue), Green: strconv.Itoa(green), Live: live,
			})
			ts.Check(err)
			ts.Setenv("BLUE_PORT", strconv.Itoa(blue))
			ts.Setenv("GREEN_PORT", strconv.Itoa(green))
		},
		"codedeploy-create": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 && len(args) != 3 {
				ts.Fatalf("usage: codedeploy-create APP GROUP [traffic-control=ELB]")
			}
			cd := codedeploy.NewFromConfig(awstest.Config(get(ts).url))
			ctx := awsCtx(ts)
			_, err := cd.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(args[0])})
			var exists *cdtypes.ApplicationAlreadyExistsException
			if !errors.As(err, &exists) { // a second group of the application
				ts.Check(err)
			}
			in := &codedeploy.CreateDeploymentGroupInput{
				ApplicationName: aws.String(args[0]), DeploymentGroupName: aws.String(args[1]),
				ServiceRoleArn: aws.String("arn:aws:iam::123456789012:role/codedeploy"),
			}
			if len(args) == 3 {
				elbName, ok := strings.CutPrefix(args[2], "traffic-control=")
				if !ok {
					ts.Fatalf("usage: codedeploy-create APP GROUP [traffic-control=ELB]")
				}
				in.DeploymentStyle = &cdtypes.DeploymentStyle{DeploymentOption: cdtypes.DeploymentOptionWithTrafficControl, DeploymentType: cdtypes.DeploymentTypeInPlace}
				in.LoadBalancerInfo = &cdtypes.LoadBalancerInfo{ElbInfoList: []cdtypes.ELBInfo{{Name: aws.String(elbName)}}}
			}
			_, err = cd.CreateDeploymentGroup(ctx, in)
			ts.Check(err)
		},
		"codedeploy-count": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 3 {
				ts.Fatalf("usage: codedeploy-count APP GROUP N")
			}
			want, err := strconv.Atoi(args[2])
			ts.Check(err)
			cd := codedeploy.NewFromConfig(awstest.Config(get(ts).url))
			out, err := cd.ListDeployments(awsCtx(ts), &codedeploy.ListDeploymentsInput{ApplicationName: aws.String(args[0]), DeploymentGroupName: aws.String(args[1])})
			ts.Check(err)
			if len(out.Deployments) != want {
				ts.Fatalf("%s/%s has %d deployments %v, want %d", args[0], args[1], len(out.Deployments), out.Deployments, want)
			}
		},
		"codedeploy-revision": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: codedeploy-revision APP GROUP")
			}
			a := get(ts)
			out, err := codedeploy.NewFromConfig(awstest.Config(a.url)).ListDeployments(awsCtx(ts), &codedeploy.ListDeploymentsInput{ApplicationName: aws.String(args[0]), DeploymentGroupName: aws.String(args[1])})
			ts.Check(err)
			if len(out.Deployments) == 0 {
				ts.Fatalf("%s/%s has no deployments", args[0], args[1])
			}
			info := motoDeployment(ts, a.url, out.Deployments[len(out.Deployments)-1])
			fmt.Fprintf(ts.Stdout(), "revisionType %s\n", info.Revision.RevisionType)
			loc := info.Revision.S3Location
			fmt.Fprintf(ts.Stdout(), "bucket %s\nkey %s\nbundleType %s\neTag %s\n", loc.Bucket, loc.Key, loc.BundleType, loc.ETag)
			fmt.Fprintf(ts.Stdout(), "description %s\n", info.Description)
		},
		"s3-mb": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: s3-mb BUCKET")
			}
			c := s3.NewFromConfig(awstest.Config(get(ts).url), func(o *s3.Options) { o.UsePathStyle = true })
			_, err := c.CreateBucket(awsCtx(ts), &s3.CreateBucketInput{Bucket: aws.String(args[0])})
			ts.Check(err)
		},
		"simulate": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 2 || len(args) > 3 {
				ts.Fatalf("usage: simulate ACTION FILE [TIMES]")
			}
			times := 0
			if len(args) == 3 {
				var err error
				times, err = strconv.Atoi(args[2])
				ts.Check(err)
			}
			get(ts).proxy.Add(faultproxy.Rule{Action: args[0], Status: http.StatusOK, Body: ts.ReadFile(args[1]), Times: times})
		},
		"simulate-error": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 3 {
				ts.Fatalf("usage: simulate-error ACTION STATUS CODE (a JSON-protocol error)")
			}
			status, err := strconv.Atoi(args[1])
			ts.Check(err)
			body := fmt.Sprintf(`{"__type":%q,"message":"injected"}`, args[2])
			get(ts).proxy.Add(faultproxy.Rule{Action: args[0], Status: status, Body: body})
		},
		"serve-health": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) < 1 || len(args) > 2 {
				ts.Fatalf("usage: serve-health PORT [STATUS]")
			}
			status := http.StatusOK
			if len(args) == 2 {
				var err error
				status, err = strconv.Atoi(args[1])
				ts.Check(err)
			}
			key := healthKey{ts, args[0]}
			mu.Lock()
			st := health[key]
			mu.Unlock()
			if st != nil {
				st.Store(int32(status)) // already serving: change the answer
				return
			}
			st = new(atomic.Int32)
			st.Store(int32(status))
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", args[0]))
			ts.Check(err)
			srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				code := int(st.Load())
				w.WriteHeader(code)
				fmt.Fprintf(w, "%s %d\n", r.URL.Path, code)
			})}
			go srv.Serve(l)
			mu.Lock()
			health[key] = st
			mu.Unlock()
			ts.Defer(func() {
				srv.Close()
				mu.Lock()
				delete(health, key)
				mu.Unlock()
			})
		},
		"example": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: example NAME DEST")
			}
			// Tests run in cmd/oops: the examples are two folders up.
			src, err := filepath.Abs(filepath.Join("..", "..", "examples", args[0]))
			ts.Check(err)
			ts.Check(os.CopyFS(ts.MkAbs(args[1]), os.DirFS(src)))
		},
		"aws-calls": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: aws-calls ACTION N")
			}
			want, err := strconv.Atoi(args[1])
			ts.Check(err)
			if got := get(ts).proxy.Count(args[0]); got != want {
				ts.Fatalf("%d %s calls, want %d (all calls: %v)", got, args[0], want, get(ts).proxy.Calls())
			}
		},
		"aws-wait": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: aws-wait ACTION")
			}
			p := get(ts).proxy
			deadline := time.Now().Add(time.Minute)
			for p.Count(args[0]) == 0 {
				if time.Now().After(deadline) {
					ts.Fatalf("no %s call within a minute", args[0])
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
		"aws-forget": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			get(ts).proxy.Clear()
		},
	}
}

// motoDeployment reads a deployment as moto stores it. Raw JSON: moto
// writes createTime as an ISO string, which the SDK refuses to decode.
func motoDeployment(ts *testscript.TestScript, url, id string) (info struct {
	Description string
	Revision    struct {
		RevisionType string
		S3Location   struct{ Bucket, Key, BundleType, ETag string }
	}
}) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"deploymentId":%q}`, id)))
	ts.Check(err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "CodeDeploy_20141006.GetDeployment")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20240101/"+awstest.Region+"/codedeploy/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	var out struct {
		DeploymentInfo json.RawMessage `json:"deploymentInfo"`
	}
	ts.Check(json.NewDecoder(resp.Body).Decode(&out))
	ts.Check(json.Unmarshal(out.DeploymentInfo, &info))
	return info
}

// healthKey names one script's health endpoint.
type healthKey struct {
	ts   *testscript.TestScript
	port string
}

// awsCondition is the script condition [moto]: moto_server is installed.
// Scripts start with "[!moto] skip"; under CI a missing moto is an error.
func awsCondition(cond string) (bool, error) {
	if cond != "moto" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		if os.Getenv("CI") != "" {
			return false, fmt.Errorf("moto_server is not installed and CI is set: %w", err)
		}
		return false, nil
	}
	return true, nil
}

// freePort is a loopback port a script names before anything listens on it
// ("nothing answers on green yet"), held for the script alone: servers that
// bind port 0 (moto, fault proxies, other tests) never land on it.
func freePort(ts *testscript.TestScript) int {
	p, release, err := testport.Reserve()
	ts.Check(err)
	ts.Defer(release)
	return p
}
