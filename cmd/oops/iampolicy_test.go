package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/iampolicy"
	"github.com/oops-deploy/oops/internal/albtest"
	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/internal/faultproxy"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

// The tests here check `oops iam-policy` against what oops really calls:
// a recorder in front of each script's fault proxy notes every AWS call
// oops makes, maps it to its IAM action and resource(s), and the printed
// policies must allow each one.
//
//   - Every AWS script checks itself as it runs: the harness that starts
//     its fault proxy (runFaultScripts for testdata/elb, alb, tolerant,
//     dns and iam; aws-start for testdata/script) puts a recorder in front
//     of it, and at the script's end each call must be allowed by the
//     policies (operator or instance: the scripts mix hook and operator
//     commands) of some .oopsrc the script held while it ran. No script
//     runs twice for it.
//   - TestIAMPolicyScripts runs testdata/iam, where iam-check says which
//     policy (operator or instance) the calls since the last check must
//     pass, as printed by oops iam-policy --json.

// iamCall is one AWS call as IAM authorizes it: an action on resources
// ("*" for calls without resource-level permissions; "" when the test
// cannot tell which resource, then only the action is checked).
type iamCall struct {
	Action    string
	Resources []string
	// Request is the call as sent, for failure messages.
	Request string
	// deployment is the CodeDeploy deployment a call names without its
	// group: the group is learned from an answer, maybe a later one.
	deployment string
	// Keys are the call's values of IAM condition keys the policies use.
	Keys map[string][]string
}

// callRecorder is a reverse proxy that records the AWS calls through it.
type callRecorder struct {
	URL string
	srv *httptest.Server

	mu    sync.Mutex
	calls []iamCall
	// taken is how many calls take has returned.
	taken int
	// groups maps CodeDeploy deployment ids to their group's ARN, learned
	// from the answers (a GetDeployment names only the deployment).
	groups map[string]string
	// onCall, if set, runs before each call is forwarded.
	onCall func()
}

func newCallRecorder(upstream string) *callRecorder {
	u, err := url.Parse(upstream)
	if err != nil {
		panic(err)
	}
	rec := &callRecorder{groups: map[string]string{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err == nil {
			rec.learn(resp.Request, body)
		}
		return nil
	}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		call := rec.iamCallOf(r, body)
		if rec.onCall != nil {
			rec.onCall()
		}
		rec.mu.Lock()
		rec.calls = append(rec.calls, call)
		rec.mu.Unlock()
		// learn reads a CreateDeployment's group from its request.
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestBodyKey{}, body)))
	}))
	rec.URL = rec.srv.URL
	return rec
}

func (rec *callRecorder) Close() { rec.srv.CloseClientConnections(); rec.srv.Close() }

// take returns the calls recorded since the last take.
func (rec *callRecorder) take() []iamCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c := rec.resolved(rec.calls[rec.taken:])
	rec.taken = len(rec.calls)
	return c
}

// all returns every call recorded.
func (rec *callRecorder) all() []iamCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.resolved(rec.calls)
}

// resolved is a copy of calls with the group of each deployment an
// answer named (else the resource stays "").
func (rec *callRecorder) resolved(calls []iamCall) []iamCall {
	c := slices.Clone(calls)
	for i := range c {
		if g := rec.groups[c[i].deployment]; g != "" {
			c[i].Resources = []string{g}
		}
	}
	return c
}

// signedFor reads the region and service from a SigV4 Authorization
// header (Credential=AKID/DATE/REGION/SERVICE/aws4_request).
func signedFor(r *http.Request) (region, service string) {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return "", ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 5 {
		return "", ""
	}
	return parts[2], parts[3]
}

// codeDeployRequest is what a CodeDeploy call names.
type codeDeployRequest struct {
	ApplicationName     string `json:"applicationName"`
	DeploymentGroupName string `json:"deploymentGroupName"`
	DeploymentID        string `json:"deploymentId"`
}

// learn notes the deployment group of deployments from CodeDeploy's
// answers (CreateDeployment, GetDeployment).
func (rec *callRecorder) learn(r *http.Request, body []byte) {
	region, service := signedFor(r)
	if service != "codedeploy" || r.Header.Get("X-Amz-Target") == "" {
		return
	}
	var out struct {
		DeploymentID   string            `json:"deploymentId"`
		DeploymentInfo codeDeployRequest `json:"deploymentInfo"`
	}
	if json.Unmarshal(body, &out) != nil {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if d := out.DeploymentInfo; d.DeploymentID != "" && d.ApplicationName != "" && d.DeploymentGroupName != "" {
		rec.groups[d.DeploymentID] = deploymentGroupARN(region, d.ApplicationName, d.DeploymentGroupName)
	}
	if out.DeploymentID != "" {
		// CreateDeployment: the group is the request's.
		if req, ok := r.Context().Value(requestBodyKey{}).([]byte); ok {
			var in codeDeployRequest
			if json.Unmarshal(req, &in) == nil && in.DeploymentGroupName != "" {
				rec.groups[out.DeploymentID] = deploymentGroupARN(region, in.ApplicationName, in.DeploymentGroupName)
			}
		}
	}
}

type requestBodyKey struct{}

func deploymentGroupARN(region, app, group string) string {
	return "arn:aws:codedeploy:" + region + ":123456789012:deploymentgroup:" + app + "/" + group
}

// iamCallOf maps a request to the IAM action and resources it needs.
func (rec *callRecorder) iamCallOf(r *http.Request, body []byte) iamCall {
	region, service := signedFor(r)
	c := iamCall{Request: r.Method + " " + r.URL.RequestURI()}
	switch service {
	case "s3":
		c.Action, c.Resources = s3CallOf(r)
	case "elasticloadbalancing":
		v := r.URL.Query()
		if form, err := url.ParseQuery(string(body)); err == nil {
			for k, vs := range form {
				v[k] = vs
			}
		}
		c.Action = "elasticloadbalancing:" + v.Get("Action")
		c.Request += " " + v.Get("Action")
		c.Resources = elbResources(region, v)
	case "codedeploy":
		op := faultproxy.ActionOf(r, body)
		c.Action = "codedeploy:" + op
		c.Request += " " + op
		var in codeDeployRequest
		_ = json.Unmarshal(body, &in)
		switch {
		case in.ApplicationName != "" && in.DeploymentGroupName != "":
			c.Resources = []string{deploymentGroupARN(region, in.ApplicationName, in.DeploymentGroupName)}
		case in.DeploymentID != "":
			c.deployment, c.Resources = in.DeploymentID, []string{""} // resolved in take
		default:
			c.Resources = []string{""}
		}
	case "route53":
		c.Action, c.Resources = route53CallOf(r)
		if c.Action == "route53:ChangeResourceRecordSets" {
			c.Keys = route53ChangeKeys(body)
		}
	case "sns":
		form, _ := url.ParseQuery(string(body))
		c.Action = "sns:" + form.Get("Action")
		c.Request += " " + form.Get("Action")
		c.Resources = []string{form.Get("TopicArn")}
		if c.Resources[0] == "" {
			c.Resources[0] = "no TopicArn"
		}
	case "autoscaling", "ec2":
		form, _ := url.ParseQuery(string(body))
		op := form.Get("Action")
		c.Action, c.Resources = service+":"+op, []string{"*"} // Describe*
		c.Request += " " + op
		switch {
		case op == "CreateLaunchTemplateVersion" && form.Get("LaunchTemplateId") != "":
			c.Resources = []string{"arn:aws:ec2:" + region + ":123456789012:launch-template/" + form.Get("LaunchTemplateId")}
		case op == "CreateLaunchTemplateVersion":
			c.Resources = []string{""} // by name: only the action is checked
		case op == "TerminateInstanceInAutoScalingGroup":
			c.Resources = []string{""} // names the instance: only the action is checked
		case service == "autoscaling" && !strings.HasPrefix(op, "Describe"):
			c.Resources = []string{"arn:aws:autoscaling:" + region + ":123456789012:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/" + form.Get("AutoScalingGroupName")}
		}
	case "sts":
		op := faultproxy.ActionOf(r, body)
		c.Action, c.Resources = service+":"+op, []string{"*"}
	default:
		// Checked like any call: no policy allows it, so it shows.
		c.Action, c.Resources = "unsigned or unknown service "+service, []string{"*"}
	}
	return c
}

// route53CallOf maps a Route 53 REST request (/2013-04-01/...) to its IAM
// action and resource (Route 53 ARNs have no region or account).
func route53CallOf(r *http.Request) (action string, resources []string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) > 0 {
		parts = parts[1:] // the API version
	}
	arn := func(kind, id string) []string { return []string{"arn:aws:route53:::" + kind + "/" + id} }
	get := r.Method == http.MethodGet
	switch {
	case get && len(parts) == 1 && parts[0] == "hostedzonesbyname":
		return "route53:ListHostedZonesByName", []string{"*"}
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset":
		if get {
			return "route53:ListResourceRecordSets", arn("hostedzone", parts[1])
		}
		if r.Method == http.MethodPost {
			return "route53:ChangeResourceRecordSets", arn("hostedzone", parts[1])
		}
	case get && len(parts) == 2 && parts[0] == "change":
		return "route53:GetChange", arn("change", parts[1])
	case get && len(parts) == 3 && parts[0] == "healthcheck" && parts[2] == "status":
		return "route53:GetHealthCheckStatus", arn("healthcheck", parts[1])
	}
	return "unmapped Route 53 call " + r.Method + " " + r.URL.Path, []string{"*"}
}

// route53ChangeKeys are the condition keys of a ChangeResourceRecordSets
// body: its changes' actions and normalized record names.
func route53ChangeKeys(body []byte) map[string][]string {
	var in struct {
		Changes []struct {
			Action string `xml:"Action"`
			Name   string `xml:"ResourceRecordSet>Name"`
		} `xml:"ChangeBatch>Changes>Change"`
	}
	keys := map[string][]string{}
	if err := xml.Unmarshal(body, &in); err != nil || len(in.Changes) == 0 {
		// Unreadable: a value no condition lists, so that it shows.
		keys["route53:ChangeResourceRecordSetsActions"] = []string{"unreadable change batch"}
		return keys
	}
	for _, ch := range in.Changes {
		keys["route53:ChangeResourceRecordSetsActions"] = append(keys["route53:ChangeResourceRecordSetsActions"], ch.Action)
		keys["route53:ChangeResourceRecordSetsNormalizedRecordNames"] = append(keys["route53:ChangeResourceRecordSetsNormalizedRecordNames"],
			strings.ToLower(strings.TrimSuffix(ch.Name, ".")))
	}
	return keys
}

// s3CallOf maps a path-style S3 request to its IAM action and resource.
func s3CallOf(r *http.Request) (action string, resources []string) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	bucketARN := "arn:aws:s3:::" + bucket
	if key == "" {
		switch {
		case r.Method == http.MethodGet && q.Has("uploads"):
			return "s3:ListBucketMultipartUploads", []string{bucketARN}
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			return "s3:ListBucket", []string{bucketARN}
		}
		return "unmapped S3 bucket call " + r.Method, []string{bucketARN}
	}
	obj := []string{bucketARN + "/" + key}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if q.Has("uploadId") {
			return "s3:ListMultipartUploadParts", obj
		}
		if q.Has("versionId") {
			return "s3:GetObjectVersion", obj
		}
		return "s3:GetObject", obj
	case http.MethodPut, http.MethodPost: // PutObject, UploadPart, Create/CompleteMultipartUpload
		return "s3:PutObject", obj
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "s3:AbortMultipartUpload", obj
		}
		return "s3:DeleteObject", obj
	}
	return "unmapped S3 object call " + r.Method, obj
}

// elbResources are the ARNs an Elastic Load Balancing call acts on:
// "*" for Describe* (no resource-level permissions), the load balancer
// of a Classic ELB call, the listener, rule or tagged ARNs of an ELBv2 one.
func elbResources(region string, v url.Values) []string {
	action := v.Get("Action")
	if strings.HasPrefix(action, "Describe") {
		return []string{"*"}
	}
	if v.Get("Version") == "2012-06-01" { // Classic ELB
		name := v.Get("LoadBalancerName")
		if name == "" {
			name = v.Get("LoadBalancerNames.member.1")
		}
		return []string{"arn:aws:elasticloadbalancing:" + region + ":123456789012:loadbalancer/" + name}
	}
	switch {
	case v.Get("ListenerArn") != "":
		return []string{v.Get("ListenerArn")}
	case v.Get("RuleArn") != "":
		return []string{v.Get("RuleArn")}
	}
	var arns []string
	for i := 1; v.Get(fmt.Sprintf("ResourceArns.member.%d", i)) != ""; i++ {
		arns = append(arns, v.Get(fmt.Sprintf("ResourceArns.member.%d", i)))
	}
	if len(arns) == 0 {
		return []string{""}
	}
	return arns
}

// missing returns, once each, the calls no document in docs allows.
func missing(calls []iamCall, docs []iampolicy.Document) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range calls {
		for _, res := range c.Resources {
			ok := slices.ContainsFunc(docs, func(d iampolicy.Document) bool {
				if res == "" {
					return actionAllowed(d, c.Action)
				}
				return d.AllowsWith(c.Action, res, c.Keys)
			})
			if ok {
				continue
			}
			m := c.Action + " on " + res
			if len(c.Keys) > 0 {
				m += fmt.Sprintf(" with %v", c.Keys)
			}
			if !seen[m] {
				seen[m] = true
				out = append(out, m+" ("+c.Request+")")
			}
		}
	}
	sort.Strings(out)
	return out
}

// actionAllowed: some statement of d allows action, on whatever resource.
func actionAllowed(d iampolicy.Document, action string) bool {
	for _, s := range d.Statement {
		if slices.ContainsFunc(s.Action, func(a string) bool { return strings.EqualFold(a, action) }) {
			return true
		}
	}
	return false
}

// wildcardActions names the actions of docs with a wildcard.
func wildcardActions(docs []iampolicy.Document) []string {
	var out []string
	for _, d := range docs {
		for _, s := range d.Statement {
			for _, a := range s.Action {
				if strings.ContainsAny(a, "*?") {
					out = append(out, s.Sid+": "+a)
				}
			}
		}
	}
	return out
}

// scriptPolicies are the operator and instance policies of each .oopsrc a
// script held while it ran (files whose name has "oopsrc", loadable as
// .oopsrc): a script may write another .oopsrc midway (dns-oopsrc,
// cp prefixed.oopsrc .oopsrc), so they are read again before each call.
type scriptPolicies struct {
	dir  string
	mu   sync.Mutex
	seen map[string][]iampolicy.Document // by file content
}

// scan adds the policies of the .oopsrc files in the script's folder now.
func (sp *scriptPolicies) scan() error {
	return filepath.WalkDir(sp.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), "oopsrc") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil // gone meanwhile
		}
		sp.mu.Lock()
		defer sp.mu.Unlock()
		if _, ok := sp.seen[string(data)]; ok {
			return nil
		}
		var docs []iampolicy.Document
		// A broken .oopsrc a script tests: oops makes no call with it.
		if c, err := config.Load(path); err == nil {
			p := iampolicy.For(c, "")
			docs = []iampolicy.Document{p.Operator, p.Instance}
		}
		sp.seen[string(data)] = docs
		return nil
	})
}

func (sp *scriptPolicies) docs() []iampolicy.Document {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var out []iampolicy.Document
	for _, k := range slices.Sorted(maps.Keys(sp.seen)) {
		out = append(out, sp.seen[k]...)
	}
	return out
}

// recordScript puts a recorder in front of upstream, the script's fault
// proxy, points the script's AWS_* at it, and, when the script ends,
// fails the script (through t) for each call that no policy of its
// .oopsrc files allows.
func recordScript(env interface {
	Setenv(string, string)
	Defer(func())
}, t testscript.T, workDir, upstream string) *callRecorder {
	sp := &scriptPolicies{dir: workDir, seen: map[string][]iampolicy.Document{}}
	if err := sp.scan(); err != nil {
		t.Fatal(err)
	}
	rec := newCallRecorder(upstream)
	rec.onCall = func() { _ = sp.scan() }
	awstest.Setenv(env, rec.URL)
	env.Defer(func() {
		rec.Close()
		if err := sp.scan(); err != nil {
			t.Fatal(err)
		}
		checkScriptCalls(t, rec.all(), sp.docs())
	})
	return rec
}

// checkScriptCalls fails t for a wildcard action in docs or a call no
// document allows. It runs in a Defer, hence t (see verifyAtEnd).
func checkScriptCalls(t testscript.T, calls []iamCall, docs []iampolicy.Document) {
	if len(calls) == 0 {
		return
	}
	if w := wildcardActions(docs); len(w) > 0 {
		t.Fatal("wildcard actions in the policies: " + strings.Join(w, ", "))
	}
	t.Log(summarize(calls))
	if m := missing(calls, docs); len(m) > 0 {
		t.Fatal("AWS calls the policies (oops iam-policy) of this script's .oopsrc do not allow:\n\t" + strings.Join(m, "\n\t"))
	}
}

// summarize says which actions on which resources calls made (go test -v).
func summarize(calls []iamCall) string {
	n := map[string]int{}
	for _, c := range calls {
		n[c.Action+" "+strings.Join(c.Resources, ",")]++
	}
	keys := slices.Sorted(maps.Keys(n))
	var b strings.Builder
	fmt.Fprintf(&b, "%d AWS calls:", len(calls))
	for _, k := range keys {
		fmt.Fprintf(&b, "\n\t%dx %s", n[k], k)
	}
	return b.String()
}

// TestIAMPolicyScripts runs testdata/iam: scripts that run the operator's
// commands and the hooks on S3 stores with a prefix, a Classic ELB with a
// preview ELB, an ALB and CodeDeploy, and check the calls of each against
// the policy for its role, as oops iam-policy --json prints it.
func TestIAMPolicyScripts(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	m := elbtest.Start(t)
	cmds := elbScriptCmds()
	maps.Copy(cmds, albScriptCmds())
	maps.Copy(cmds, tolerantCmds())
	maps.Copy(cmds, iamCmds())
	runFaultScripts(t, "testdata/iam", m.URL, 540000000000, cmds, func(env *testscript.Env) {
		env.Values[albKey{}] = &albScript{albs: map[string]*albtest.ALB{}}
	})
}

// iamCmds are the commands of the testdata/iam scripts:
//
//	iam-check ROLE FILE   the AWS calls since the last check (at least one)
//	                      are all allowed by the ROLE ("operator" or
//	                      "instance") policy in FILE (oops iam-policy --json)
//	iam-calls N           exactly N AWS calls since the last check; forget them
//	iam-codedeploy APP GROUP  a CodeDeploy application and deployment group
//	iam-simulate ACTION FILE  answer ACTION with FILE's JSON (moto does not
//	                      run deployments)
func iamCmds() map[string]scriptCmd {
	rec := func(ts *testscript.TestScript) *callRecorder { return faultState(ts).rec }
	return map[string]scriptCmd{
		"iam-check": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 || (args[0] != "operator" && args[0] != "instance") {
				ts.Fatalf("usage: iam-check operator|instance FILE")
			}
			var p iampolicy.Policies
			ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &p))
			docs := []iampolicy.Document{p.Operator}
			if args[0] == "instance" {
				docs[0] = p.Instance
			}
			if len(docs[0].Statement) == 0 {
				ts.Fatalf("%s has no %s policy", args[1], args[0])
			}
			if w := wildcardActions(docs); len(w) > 0 {
				ts.Fatalf("wildcard actions in the %s policy: %s", args[0], strings.Join(w, ", "))
			}
			calls := rec(ts).take()
			if len(calls) == 0 {
				ts.Fatalf("no AWS calls to check")
			}
			ts.Logf("%s", summarize(calls))
			if m := missing(calls, docs); len(m) > 0 {
				ts.Fatalf("AWS calls the %s policy does not allow:\n\t%s", args[0], strings.Join(m, "\n\t"))
			}
		},
		"iam-calls": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 1 {
				ts.Fatalf("usage: iam-calls N")
			}
			if calls := rec(ts).take(); fmt.Sprint(len(calls)) != args[0] {
				ts.Fatalf("%d AWS calls, want %s:\n%s", len(calls), args[0], summarize(calls))
			}
		},
		"iam-codedeploy": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: iam-codedeploy APP GROUP")
			}
			cd := codedeploy.NewFromConfig(awstest.Config(faultState(ts).moto))
			_, err := cd.CreateApplication(awsCtx(ts), &codedeploy.CreateApplicationInput{ApplicationName: aws.String(args[0])})
			ts.Check(err)
			_, err = cd.CreateDeploymentGroup(awsCtx(ts), &codedeploy.CreateDeploymentGroupInput{
				ApplicationName: aws.String(args[0]), DeploymentGroupName: aws.String(args[1]),
				ServiceRoleArn: aws.String("arn:aws:iam::123456789012:role/codedeploy"),
			})
			ts.Check(err)
		},
		"iam-simulate": func(ts *testscript.TestScript, neg bool, args []string) {
			noNeg(ts, neg)
			if len(args) != 2 {
				ts.Fatalf("usage: iam-simulate ACTION FILE")
			}
			faultState(ts).proxy.Add(faultproxy.Rule{Action: args[0], Status: http.StatusOK, Body: ts.ReadFile(args[1])})
		},
	}
}

// TestIAMCallOf: the recorder maps Route 53, SNS and unknown calls to the
// action and resource IAM checks; an unknown call cannot pass unchecked.
func TestIAMCallOf(t *testing.T) {
	t.Parallel() // scripts of every test share -parallel's slots: no idle slot between tests
	signed := func(method, path, service, body string) *http.Request {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if service != "" {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=x")
		}
		return r
	}
	tests := []struct {
		req         *http.Request
		action, res string
	}{
		{signed("GET", "/2013-04-01/hostedzonesbyname?dnsname=example.com.", "route53", ""), "route53:ListHostedZonesByName", "*"},
		{signed("GET", "/2013-04-01/hostedzone/Z1/rrset?name=api.example.com.", "route53", ""), "route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/Z1"},
		{signed("POST", "/2013-04-01/hostedzone/Z1/rrset/", "route53", "<ChangeResourceRecordSetsRequest/>"), "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z1"},
		{signed("GET", "/2013-04-01/change/C1", "route53", ""), "route53:GetChange", "arn:aws:route53:::change/C1"},
		{signed("GET", "/2013-04-01/healthcheck/h1/status", "route53", ""), "route53:GetHealthCheckStatus", "arn:aws:route53:::healthcheck/h1"},
		{signed("POST", "/", "sns", "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At&Message=x"), "sns:Publish", "arn:aws:sns:us-east-1:1:t"},
		{signed("GET", "/moto-api/data.json", "", ""), "unsigned or unknown service ", "*"},
	}
	rec := &callRecorder{groups: map[string]string{}}
	for _, tt := range tests {
		body, _ := io.ReadAll(tt.req.Body)
		c := rec.iamCallOf(tt.req, body)
		if c.Action != tt.action || len(c.Resources) != 1 || c.Resources[0] != tt.res {
			t.Errorf("%s: got %s on %v, want %s on %s", c.Request, c.Action, c.Resources, tt.action, tt.res)
		}
		if m := missing([]iamCall{c}, []iampolicy.Document{{}}); len(m) != 1 {
			t.Errorf("%s: an empty policy allows it", c.Request)
		}
	}
}
