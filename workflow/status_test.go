package workflow

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/oops-deploy/oops/mock"
	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
)

// withELB is an .oopsrc naming a target, so that oops list asks it.
const withELB = `{"application-name": "api", "store": "rel", "elb-name": "web", "region": "eu-west-1"}`

// unsafeErr is what cmd returns for a local state directory others could
// write: oops list refuses on it instead of reading around it.
type unsafeErr struct{}

func (unsafeErr) Error() string { return "state directory is writable by others" }
func (unsafeErr) Unsafe() bool  { return true }

func TestReleaseStatus(t *testing.T) {
	t.Parallel()
	sha := func(c byte) string { return strings.Repeat(string(c), 40) }
	live, off, bad, idle := sha('a'), sha('b'), sha('c'), sha('d')
	rels := []release.Release{{Commit: live}, {Commit: off}, {Commit: bad}, {Commit: idle}}
	state := func(offInstalling bool) func(context.Context) (*target.State, error) {
		return func(context.Context) (*target.State, error) {
			return &target.State{
				Live: target.ColorState{Color: release.Blue, Commit: live},
				Off:  target.ColorState{Color: release.Green, Commit: off, Installing: offInstalling},
			}, nil
		}
	}
	tests := []struct {
		name     string
		rc       string
		marks    store.Marks
		target   func(context.Context) (target.Target, error)
		want     map[string]ReleaseState // nil: columns left out
		wantErr  bool
		wantWarn string
	}{
		{
			name:  "live, warm off, BAD, published only",
			rc:    withELB,
			marks: store.Marks{bad: {Bad: true, BadReason: "5xx"}},
			target: func(context.Context) (target.Target, error) {
				return &mock.Target{Name: "fake target", StateFunc: state(false)}, nil
			},
			want: map[string]ReleaseState{
				live: {Status: StatusLive, Color: release.Blue},
				off:  {Status: StatusOff, Color: release.Green, Warm: true},
				bad:  {Status: StatusBad, Mark: store.Mark{Bad: true, BadReason: "5xx"}},
				idle: {},
			},
		},
		{
			name:  "BAD on the off color stays BAD, a live one LIVE",
			rc:    withELB,
			marks: store.Marks{off: {Bad: true, BadReason: "rolled back"}, live: {Bad: true, BadReason: "old"}},
			target: func(context.Context) (target.Target, error) {
				return &mock.Target{Name: "fake target", StateFunc: state(false)}, nil
			},
			want: map[string]ReleaseState{
				live: {Status: StatusLive, Color: release.Blue, Mark: store.Mark{Bad: true, BadReason: "old"}},
				off:  {Status: StatusBad, Color: release.Green, Warm: true, Mark: store.Mark{Bad: true, BadReason: "rolled back"}},
				bad:  {}, idle: {},
			},
		},
		{
			name: "an install that never passed its check is not warm",
			rc:   withELB,
			target: func(context.Context) (target.Target, error) {
				return &mock.Target{Name: "fake target", StateFunc: state(true)}, nil
			},
			want: map[string]ReleaseState{
				live: {Status: StatusLive, Color: release.Blue},
				off:  {Status: StatusOff, Color: release.Green, Installing: true},
				bad:  {}, idle: {},
			},
		},
		{
			name: "no target and no marks: nothing to say",
			want: nil,
		},
		{
			name:  "no target: the marks alone",
			marks: store.Marks{bad: {Bad: true, BadReason: "5xx"}},
			want: map[string]ReleaseState{
				live: {}, off: {}, idle: {},
				bad: {Status: StatusBad, Mark: store.Mark{Bad: true, BadReason: "5xx"}},
			},
		},
		{
			name: "a target that cannot be read is a warning",
			rc:   withELB,
			target: func(context.Context) (target.Target, error) {
				return &mock.Target{Name: "fake target", StateFunc: func(context.Context) (*target.State, error) {
					return nil, fmt.Errorf("describe web: throttled\nretry later")
				}}, nil
			},
			want:     map[string]ReleaseState{live: {}, off: {}, bad: {}, idle: {}},
			wantWarn: "oops: cannot tell which releases run where: describe web: throttled\n",
		},
		{
			name:     "a target that cannot be opened is a warning",
			rc:       withELB,
			target:   func(context.Context) (target.Target, error) { return nil, errors.New("no credentials") },
			want:     map[string]ReleaseState{live: {}, off: {}, bad: {}, idle: {}},
			wantWarn: "oops: cannot tell which releases run where: no credentials\n",
		},
		{
			name:    "an unsafe target is refused",
			rc:      withELB,
			target:  func(context.Context) (target.Target, error) { return nil, fmt.Errorf("open target: %w", unsafeErr{}) },
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, tt.rc)
			ctx := context.Background()
			if tt.marks != nil {
				if err := store.UpdateMarks(ctx, fx.st, "api", func(m store.Marks) {
					for k, v := range tt.marks {
						m[k] = v
					}
				}); err != nil {
					t.Fatal(err)
				}
			}
			fx.d.Target = tt.target
			if fx.d.Target == nil {
				fx.d.Target = func(context.Context) (target.Target, error) {
					t.Error("the target is asked without one in .oopsrc")
					return nil, errors.New("no target")
				}
			}
			got, err := fx.runner().ReleaseStatus(ctx, rels)
			if tt.wantErr {
				var u unsafeErr
				if !errors.As(err, &u) || got != nil {
					t.Fatalf("ReleaseStatus = %v, %v; want the unsafe target's error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReleaseStatus =\n%v\nwant\n%v", got, tt.want)
			}
			if w := fx.errOut.String(); w != tt.wantWarn {
				t.Errorf("stderr = %q, want %q", w, tt.wantWarn)
			}
		})
	}
}

// TestListStatusUsesTheListingsMarks: oops list reads the marks in the
// same wave as the releases; the status is made from those, not from a
// second read of marks.json, unless the listing has none.
func TestListStatusUsesTheListingsMarks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bad := strings.Repeat("c", 40)
	rels := []release.Release{{Commit: bad}}
	fx := newFixture(t, `{"application-name": "api", "store": "rel"}`)
	// marks.json says nothing; the listing read a BAD mark.
	got, err := fx.runner().ListStatus(ctx, &store.Listing{Releases: rels, Marks: store.Marks{bad: {Bad: true, BadReason: "5xx"}}})
	if err != nil || got[bad].Status != StatusBad {
		t.Fatalf("ListStatus = %v, %v; want the listing's BAD mark", got, err)
	}
	// A listing without marks: they are read.
	if err := store.UpdateMarks(ctx, fx.st, "api", func(m store.Marks) { m[bad] = store.Mark{Bad: true, BadReason: "slow"} }); err != nil {
		t.Fatal(err)
	}
	got, err = fx.runner().ListStatus(ctx, &store.Listing{Releases: rels})
	if err != nil || got[bad].BadReason != "slow" {
		t.Fatalf("ListStatus without marks = %v, %v; want marks.json read", got, err)
	}
}
