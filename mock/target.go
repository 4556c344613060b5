// Package mock has stand-ins for the interfaces of package target, for
// tests of the code that drives them (target.Switch, the commands). Each
// method calls the function field of the same name; a nil field panics with
// the method's name, so a test says which calls it expects and any other
// call fails it loudly.
package mock

import (
	"context"
	"time"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

var (
	_ target.Target        = (*Target)(nil)
	_ target.Target        = (*RepairTarget)(nil)
	_ target.RepairPlanner = (*RepairTarget)(nil)
	_ target.Deployer      = (*Deployer)(nil)
)

// Target is a target.Target. It is not a target.RepairPlanner (that is
// found by a type assertion, which a nil field could not hide): use
// RepairTarget for one.
type Target struct {
	// Name is what String returns ("mock" when empty).
	Name          string
	StateFunc     func(ctx context.Context) (*target.State, error)
	PlanFunc      func(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error)
	ApplyFunc     func(ctx context.Context, p *target.Plan) error
	ProbeFunc     func(ctx context.Context, c release.Color) error
	VerifyFunc    func(ctx context.Context, c release.Color, timeout time.Duration) error
	RepairFunc    func(ctx context.Context) (string, error)
	SetCommitFunc func(ctx context.Context, c release.Color, commit string) error
}

func (t *Target) String() string {
	if t.Name == "" {
		return "mock"
	}
	return t.Name
}

func (t *Target) State(ctx context.Context) (*target.State, error) {
	if t.StateFunc == nil {
		panic("mock.Target: State called, StateFunc not set")
	}
	return t.StateFunc(ctx)
}

func (t *Target) Plan(ctx context.Context, st *target.State, to release.Color, weight int) (*target.Plan, error) {
	if t.PlanFunc == nil {
		panic("mock.Target: Plan called, PlanFunc not set")
	}
	return t.PlanFunc(ctx, st, to, weight)
}

func (t *Target) Apply(ctx context.Context, p *target.Plan) error {
	if t.ApplyFunc == nil {
		panic("mock.Target: Apply called, ApplyFunc not set")
	}
	return t.ApplyFunc(ctx, p)
}

func (t *Target) Probe(ctx context.Context, c release.Color) error {
	if t.ProbeFunc == nil {
		panic("mock.Target: Probe called, ProbeFunc not set")
	}
	return t.ProbeFunc(ctx, c)
}

func (t *Target) Verify(ctx context.Context, c release.Color, timeout time.Duration) error {
	if t.VerifyFunc == nil {
		panic("mock.Target: Verify called, VerifyFunc not set")
	}
	return t.VerifyFunc(ctx, c, timeout)
}

func (t *Target) Repair(ctx context.Context) (string, error) {
	if t.RepairFunc == nil {
		panic("mock.Target: Repair called, RepairFunc not set")
	}
	return t.RepairFunc(ctx)
}

func (t *Target) SetCommit(ctx context.Context, c release.Color, commit string) error {
	if t.SetCommitFunc == nil {
		panic("mock.Target: SetCommit called, SetCommitFunc not set")
	}
	return t.SetCommitFunc(ctx, c, commit)
}

// RepairTarget is a Target that is also a target.RepairPlanner.
type RepairTarget struct {
	Target
	PlanRepairFunc func(ctx context.Context, to release.Color) (*target.Plan, error)
}

func (t *RepairTarget) PlanRepair(ctx context.Context, to release.Color) (*target.Plan, error) {
	if t.PlanRepairFunc == nil {
		panic("mock.RepairTarget: PlanRepair called, PlanRepairFunc not set")
	}
	return t.PlanRepairFunc(ctx, to)
}

// Deployer is a target.Deployer.
type Deployer struct {
	DeployFunc func(ctx context.Context, req target.DeployRequest) (*target.Deployment, error)
}

func (d *Deployer) Deploy(ctx context.Context, req target.DeployRequest) (*target.Deployment, error) {
	if d.DeployFunc == nil {
		panic("mock.Deployer: Deploy called, DeployFunc not set")
	}
	return d.DeployFunc(ctx, req)
}
