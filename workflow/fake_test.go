package workflow

import (
	"context"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// fakeTarget is a target.Target whose methods are its func fields; a nil
// field panics with the method's name, so a test says what it expects.
// (The shared mock package replaces it once it lands.)
type fakeTarget struct {
	StateFunc     func(ctx context.Context) (*target.State, error)
	PlanFunc      func(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error)
	ApplyFunc     func(ctx context.Context, p *target.Plan) error
	ProbeFunc     func(ctx context.Context, c release.Color) error
	VerifyFunc    func(ctx context.Context, c release.Color, timeout time.Duration) error
	SetCommitFunc func(ctx context.Context, c release.Color, commit string) error
}

func (t *fakeTarget) String() string { return "fake target" }

func (t *fakeTarget) State(ctx context.Context) (*target.State, error) {
	if t.StateFunc == nil {
		panic("unexpected State")
	}
	return t.StateFunc(ctx)
}

func (t *fakeTarget) Plan(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
	if t.PlanFunc == nil {
		panic("unexpected Plan")
	}
	return t.PlanFunc(ctx, st, to, weight)
}

func (t *fakeTarget) Apply(ctx context.Context, p *target.Plan) error {
	if t.ApplyFunc == nil {
		panic("unexpected Apply")
	}
	return t.ApplyFunc(ctx, p)
}

func (t *fakeTarget) Probe(ctx context.Context, c release.Color) error {
	if t.ProbeFunc == nil {
		panic("unexpected Probe")
	}
	return t.ProbeFunc(ctx, c)
}

func (t *fakeTarget) Verify(ctx context.Context, c release.Color, timeout time.Duration) error {
	if t.VerifyFunc == nil {
		panic("unexpected Verify")
	}
	return t.VerifyFunc(ctx, c, timeout)
}

func (t *fakeTarget) Repair(context.Context) (string, error) { panic("unexpected Repair") }

func (t *fakeTarget) SetCommit(ctx context.Context, c release.Color, commit string) error {
	if t.SetCommitFunc == nil {
		panic("unexpected SetCommit")
	}
	return t.SetCommitFunc(ctx, c, commit)
}
