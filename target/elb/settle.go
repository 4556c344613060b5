package elb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// settleRead is how long recovery waits before reading the ELB a second
// time, when the first read says nothing changed: a Classic ELB's reads
// lag its changes by a moment.
const settleRead = 2 * time.Second

// runSettled makes call c, retrying with backoff for up to SettleTimeout
// while AWS answers c.settling: a real Classic ELB answers a create on a
// port whose delete has not settled with DuplicateListener (and a policy
// call on a just-created listener with ListenerNotFound), a 400 the SDK
// does not retry.
func (t *Target) runSettled(ctx context.Context, c call) error {
	deadline := t.opts.Now().Add(t.opts.SettleTimeout)
	wait := 500 * time.Millisecond
	for {
		err := c.run(ctx)
		var ae smithy.APIError
		if err == nil || c.settling == "" || !errors.As(err, &ae) || ae.ErrorCode() != c.settling {
			return err
		}
		left := deadline.Sub(t.opts.Now())
		if left <= 0 {
			return fmt.Errorf("%w; still %s after retrying for %s", t.explain(c.op, err), c.settling, t.opts.SettleTimeout)
		}
		t.logf("%s answered %s (an earlier change has not settled yet): retrying in %s", c.op, c.settling, min(wait, left).Round(time.Millisecond))
		if serr := t.opts.Sleep(ctx, min(wait, left)); serr != nil {
			return err
		}
		wait = min(2*wait, 8*time.Second)
	}
}

// runAll makes calls in order, each with runSettled.
func (t *Target) runAll(ctx context.Context, calls []call) error {
	for _, c := range calls {
		t.logf("%s", c.text)
		if err := t.runSettled(ctx, c); err != nil {
			return t.explain(c.op, err)
		}
	}
	return nil
}

// deleteSent reports whether the switch got as far as sending its
// DeleteLoadBalancerListeners (it may have failed after taking effect).
func (ch *change) deleteSent(failed int) bool {
	for _, c := range ch.calls[:failed+1] {
		if c.op == "DeleteLoadBalancerListeners" {
			return true
		}
	}
	return false
}

// moved reports whether o shows listeners no longer all on color from:
// some missing, split, or on the other color.
func moved(o *observation, from release.Color) bool {
	return o.traffic != from || o.split || len(o.missing) > 0
}

// finishForward completes a switch whose delete was sent: re-creating the
// listeners on the old port can meet the very error that stopped the
// switch (the port's delete not settled), and the new color was checked
// before the switch started, so the way to listeners again is forward.
func (t *Target) finishForward(ctx context.Context, o *observation, ch *change, failed int, cause error) error {
	t.logf("%s failed after %d of %d calls (%v): the listeners were deleted already, so finishing the switch to %s", ch.calls[failed].op, failed, len(ch.calls), cause, ch.to)
	calls, err := t.convergeDefs(o, ch.to, ch.before.defs)
	if err == nil {
		err = t.runAll(ctx, calls)
	}
	if err != nil {
		return target.Hinted(fmt.Errorf("%w: switch to %s failed half-way: %w; finishing it failed too: %v", target.ErrInconsistent, ch.to, cause, err),
			"run `oops status` to see what is missing, then `oops repair` as soon as AWS answers again")
	}
	t.logf("finished: %s is live", ch.to)
	return nil
}
