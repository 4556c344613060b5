package awsfence_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/awsfence"
)

// fence is a lease the test can revoke; it counts its checks.
type fence struct {
	mu     sync.Mutex
	lost   bool
	checks int
	at     time.Time
}

var errLost = errors.New("lost the lock to bob")

func (f *fence) Check(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	f.at = time.Now()
	if f.lost {
		return errLost
	}
	return nil
}

func (f *fence) Generation() int64 { return 7 }

// server is a Classic ELB endpoint that records the actions it was sent
// and when each arrived.
type server struct {
	mu      sync.Mutex
	actions []string
	arrived time.Time
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	s.actions = append(s.actions, r.Form.Get("Action"))
	s.arrived = time.Now()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	a := r.Form.Get("Action")
	_, _ = w.Write([]byte("<" + a + "Response><" + a + "Result></" + a + "Result></" + a + "Response>"))
}

func client(url string) *elbsdk.Client {
	return elbsdk.New(elbsdk.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  aws.AnonymousCredentials{},
		APIOptions:   []func(*middleware.Stack) error{awsfence.Middleware},
	})
}

func TestChangingCallsNeedTheLease(t *testing.T) {
	srv := &server{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	api := client(hs.URL)
	f := &fence{}
	ctx := target.WithFence(context.Background(), f)

	if _, err := api.DescribeLoadBalancers(ctx, &elbsdk.DescribeLoadBalancersInput{}); err != nil {
		t.Fatalf("a read with the lease: %v", err)
	}
	if _, err := api.DeleteLoadBalancerListeners(ctx, &elbsdk.DeleteLoadBalancerListenersInput{LoadBalancerName: aws.String("web"), LoadBalancerPorts: []int32{80}}); err != nil {
		t.Fatalf("a change with the lease: %v", err)
	}
	f.mu.Lock()
	f.lost = true
	f.mu.Unlock()
	_, err := api.CreateLoadBalancerListeners(ctx, &elbsdk.CreateLoadBalancerListenersInput{LoadBalancerName: aws.String("web"),
		Listeners: []types.Listener{{LoadBalancerPort: 80, InstancePort: aws.Int32(8082), Protocol: aws.String("HTTP")}}})
	if !errors.Is(err, errLost) {
		t.Fatalf("a change after the lease was lost: %v, want the fence's error", err)
	}
	// Undo steps run on a context that outlives cancellation: still fenced.
	_, err = api.AddTags(context.WithoutCancel(ctx), &elbsdk.AddTagsInput{LoadBalancerNames: []string{"web"}, Tags: []types.Tag{{Key: aws.String("k")}}})
	if !errors.Is(err, errLost) {
		t.Fatalf("a change on a WithoutCancel context: %v, want the fence's error", err)
	}
	// Reads still go: the operator must be able to see what happened.
	if _, err := api.DescribeTags(ctx, &elbsdk.DescribeTagsInput{LoadBalancerNames: []string{"web"}}); err != nil {
		t.Fatalf("a read after the lease was lost: %v", err)
	}
	// No fence at all (dry runs, commands without the lock): not checked.
	if _, err := api.AddTags(context.Background(), &elbsdk.AddTagsInput{LoadBalancerNames: []string{"web"}, Tags: []types.Tag{{Key: aws.String("k")}}}); err != nil {
		t.Fatalf("a change without a fence: %v", err)
	}
	got := strings.Join(srv.actions, " ")
	if want := "DescribeLoadBalancers DeleteLoadBalancerListeners DescribeTags AddTags"; got != want {
		t.Fatalf("the ELB was sent %q, want %q", got, want)
	}
}

func TestChanges(t *testing.T) {
	for op, want := range map[string]bool{
		"DescribeLoadBalancers": false, "GetCallerIdentity": false, "ListObjectsV2": false, "HeadObject": false,
		"BatchGetDeploymentTargets": false, "ModifyListener": true, "CreateDeployment": true, "PutObject": true,
		"DeleteLoadBalancerListeners": true, "SetLoadBalancerPoliciesOfListener": true, "StopDeployment": true,
	} {
		if got := awsfence.Changes(op); got != want {
			t.Errorf("Changes(%s) = %v, want %v", op, got, want)
		}
	}
}

// BenchmarkWindow measures what remains of the window on AWS: the time
// from the fence check of a changing call to its arrival at the endpoint
// (here on loopback, so it is the SDK's own work after the check). A
// holder stopped inside it sends one call after resuming.
func BenchmarkWindow(b *testing.B) {
	srv := &server{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	api := client(hs.URL)
	f := &fence{}
	ctx := target.WithFence(context.Background(), f)
	var total time.Duration
	for b.Loop() {
		if _, err := api.AddTags(ctx, &elbsdk.AddTagsInput{LoadBalancerNames: []string{"web"}, Tags: []types.Tag{{Key: aws.String("k")}}}); err != nil {
			b.Fatal(err)
		}
		srv.mu.Lock()
		f.mu.Lock()
		total += srv.arrived.Sub(f.at)
		f.mu.Unlock()
		srv.mu.Unlock()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-check-to-arrival/op")
}
