package target

import (
	"context"
	"errors"
)

// Fence is the lease of the lock a mutating command holds. Every step that
// changes something (an AWS call that changes a load balancer, a switch sent
// to the proxy, a process started or stopped, a state or store write, undo
// steps included) asks Check first: a holder that was stopped past its
// lease (SIGSTOP, a closed laptop lid) must not act on what it read before
// someone else took over.
type Fence interface {
	// Check returns nil while the holder may still act, else an error that
	// says who it lost the lock to (it wraps store.ErrLockLost). It may
	// renew a lease that is old but still the holder's, hence ctx.
	Check(ctx context.Context) error
	// Generation grows with every new holder of the lock. Where oops owns
	// the switch (the local proxy) it is a real fencing token: a switch
	// carrying a lower generation than the last one applied is refused.
	Generation() int64
}

// ErrFenced: a newer holder of the lock has acted where oops owns the
// switch (the local proxy, a color's state file), so this older one's
// change was refused. The CLI treats it like a lost lock (exit 5).
var ErrFenced = errors.New("fenced out by a newer lock holder")

type fenceKey struct{}

// WithFence returns ctx carrying f, so that backends can check it before
// each mutating step without every signature naming it. It survives
// context.WithoutCancel, so undo steps run on a fresh deadline are fenced
// too.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx carries, or nil (dry runs, commands that
// take no lock, tests of a backend alone).
func FenceOf(ctx context.Context) Fence {
	f, _ := ctx.Value(fenceKey{}).(Fence)
	return f
}

// CheckFence is FenceOf(ctx).Check(ctx), and nil when ctx carries no fence.
func CheckFence(ctx context.Context) error {
	if f := FenceOf(ctx); f != nil {
		return f.Check(ctx)
	}
	return nil
}

// FenceGeneration is the generation of ctx's fence, 0 when there is none.
func FenceGeneration(ctx context.Context) int64 {
	if f := FenceOf(ctx); f != nil {
		return f.Generation()
	}
	return 0
}

type childEnvKey struct{}

// WithChildEnv returns ctx carrying extra "KEY=value" entries for the
// processes a backend starts for this command (deploy scripts, apps): the
// lock token reaches them this way, never through the process environment,
// where every goroutine of the process would see it.
func WithChildEnv(ctx context.Context, kv ...string) context.Context {
	env := append(append([]string(nil), ChildEnv(ctx)...), kv...)
	return context.WithValue(ctx, childEnvKey{}, env)
}

// ChildEnv is what WithChildEnv added to ctx, in order; nil when nothing.
func ChildEnv(ctx context.Context) []string {
	env, _ := ctx.Value(childEnvKey{}).([]string)
	return env
}
