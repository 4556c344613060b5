package elb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/elb"
	"github.com/oops-deploy/oops/target/elb/elbtest"
)

func TestStateReadsLiveColorFromListeners(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{Live: release.Green, Instances: 2}, elb.Options{})
	st, err := e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Color != release.Green || st.Live.Port != 8081 || st.Off.Color != release.Blue || st.Off.Port != 8080 {
		t.Errorf("live %s:%d off %s:%d, want green:8081 blue:8080", st.Live.Color, st.Live.Port, st.Off.Color, st.Off.Port)
	}
	if st.Live.Commit != target.UnknownCommit || st.Off.Commit != target.UnknownCommit {
		t.Errorf("commits before any deploy: %q %q, want unknown", st.Live.Commit, st.Off.Commit)
	}
	if st.HealthCheck != "HTTP:8081/healthcheck" {
		t.Errorf("health check %q", st.HealthCheck)
	}
	if len(st.Listeners) != 2 || !strings.Contains(st.Listeners[1], "443") || !strings.Contains(st.Listeners[1], elbtest.FakeCert) {
		t.Errorf("listeners %q", st.Listeners)
	}
	// Two reads, nothing else: status must not change the ELB.
	if got := e.proxy.Count(""); got != 2 {
		t.Errorf("State made %d calls (%v), want 2", got, e.proxy.Calls())
	}

	d, err := e.tgt.Describe(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Live.Instances) != 2 || d.Live.Healthy == nil || !*d.Live.Healthy {
		t.Errorf("live instances %+v healthy %v, want 2 InService", d.Live.Instances, d.Live.Healthy)
	}
	if d.Off.Instances != nil || d.Off.Healthy != nil {
		t.Errorf("the ELB only checks the live port, yet off shows health %+v", d.Off)
	}
}

func TestSetCommitIsReportedPerColor(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{}, elb.Options{})
	sha := strings.Repeat("ab", 20)
	if err := e.tgt.SetCommit(e.ctx, release.Green, sha); err != nil {
		t.Fatal(err)
	}
	st, err := e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Off.Color != release.Green || st.Off.Commit != sha || st.Live.Commit != target.UnknownCommit {
		t.Errorf("off %s runs %q, live %q; want green %s and unknown", st.Off.Color, st.Off.Commit, st.Live.Commit, sha)
	}
	if s := e.snap(); s.Tags["oops:green-commit"] != sha || s.Tags["oops:listeners"] == "" {
		t.Errorf("tags after SetCommit: %v (want the commit and the listener record)", s.Tags)
	}
}

// Each state oops will not guess about is an error naming the ELB, the tags
// or listeners involved, and what to run.
func TestStateRefusesToGuess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		f       elbtest.Fixture
		is      error
		want    []string
		hint    string
		pending bool
	}{
		{
			name: "missing tag",
			f:    elbtest.Fixture{Blue: "8080", Green: "-"},
			is:   target.ErrMisconfigured,
			want: []string{"has no tag green", "blue=8080"},
			hint: "aws elb add-tags",
		},
		{
			name: "non-numeric tag",
			f:    elbtest.Fixture{Blue: "8080", Green: "eighty"},
			is:   target.ErrMisconfigured,
			want: []string{`tag green="eighty" is not a port number`},
			hint: "aws elb add-tags",
		},
		{
			name: "equal ports",
			f:    elbtest.Fixture{Blue: "8080", Green: "8080"},
			is:   target.ErrMisconfigured,
			want: []string{"tags blue and green are both 8080"},
			hint: "aws elb add-tags",
		},
		{
			name: "split listeners",
			f: elbtest.Fixture{Listeners: []elbtest.Listener{
				{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP", InstancePort: 8080},
				{Port: 443, Protocol: "HTTPS", InstanceProtocol: "HTTP", InstancePort: 8081, Cert: elbtest.FakeCert},
			}},
			is:      target.ErrInconsistent,
			want:    []string{"split across both colors", "80 -> 8080 (blue)", "443 -> 8081 (green)", "health check points at blue"},
			hint:    "oops repair",
			pending: true,
		},
		{
			name: "pointing at neither",
			f: elbtest.Fixture{Listeners: []elbtest.Listener{
				{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP", InstancePort: 9000},
			}, HealthCheck: "TCP:9000"},
			is:   target.ErrMisconfigured,
			want: []string{"no listener points at blue (port 8080) or green (port 8081)", "80 -> 9000"},
			hint: "fix the tags",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tt.f, elb.Options{})
			st, err := e.tgt.State(e.ctx)
			if !errors.Is(err, tt.is) {
				t.Fatalf("State = %v, want %v", err, tt.is)
			}
			msg := err.Error()
			if !strings.Contains(msg, e.name) {
				t.Errorf("error does not name the ELB: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			var h interface{ Hint() string }
			if !errors.As(err, &h) || !strings.Contains(h.Hint(), tt.hint) {
				t.Errorf("no hint containing %q on %v", tt.hint, err)
			}
			if tt.pending != (st != nil && st.Pending != nil) {
				t.Errorf("pending = %+v, want pending %v", st, tt.pending)
			}
			// Nothing may be changed by reading.
			if m := e.mutating(); len(m) != 0 {
				t.Errorf("reading changed the ELB: %v", m)
			}
			// And nothing may be switched from such a state.
			if _, err := switchTo(e, target.SwitchOptions{Force: true}); !errors.Is(err, tt.is) {
				t.Errorf("Switch = %v, want %v", err, tt.is)
			}
			if m := e.mutating(); len(m) != 0 {
				t.Errorf("a refused switch changed the ELB: %v", m)
			}
		})
	}
}

// A preview ELB may carry no color tags: oops off passes the main ELB's.
func TestPortsFromOptionsWhenUntagged(t *testing.T) {
	t.Parallel()
	e := setup(t, elbtest.Fixture{Blue: "-", Green: "-", Listeners: []elbtest.Listener{{Port: 80, Protocol: "HTTP", InstanceProtocol: "HTTP", InstancePort: 8080}}, HealthCheck: "HTTP:8080/healthcheck"},
		elb.Options{Ports: map[release.Color]int{release.Blue: 8080, release.Green: 8081}})
	st, err := e.tgt.State(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Color != release.Blue || st.Off.Port != 8081 {
		t.Errorf("state %+v", st)
	}
}
