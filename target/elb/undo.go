package elb

import (
	"context"
	"fmt"
	"strings"

	"github.com/oops-deploy/oops/target"
)

// reattachesPolicies reports whether listeners about to be created need
// policies attached after their creation.
func reattachesPolicies(create []listener) bool {
	for _, d := range create {
		if len(d.Policies) > 0 {
			return true
		}
	}
	return false
}

// finished reports whether a switch whose call failed is complete at AWS
// anyway (the answer was lost): every listener on ch.to as read at the
// start of the switch. A record of the switch still in progress is
// cleared then; failing that is an error.
func (t *Target) finished(ctx context.Context, o *observation, ch *change) (bool, error) {
	if o.traffic != ch.to || o.split || len(o.missing) > 0 {
		return false, nil
	}
	calls, err := t.convergeDefs(o, ch.to, ch.before.defs)
	if err != nil {
		return false, nil
	}
	for _, c := range calls {
		if c.op != "RemoveTags" {
			return false, nil
		}
	}
	for _, c := range calls {
		t.logf("%s", c.text)
		if err := c.run(ctx); err != nil {
			return false, fmt.Errorf("switch to %s: every listener points at %s, but clearing the record of the switch failed: %w (run oops repair)", ch.to, ch.to, t.explain(c.op, err))
		}
	}
	return true, nil
}

// policiesNotBackError is a switch (or its undo) that moved the listeners
// but could not re-attach their policies: the listeners serve without them
// (a weaker TLS policy, no proxy protocol) until they are put back.
func (o *observation) policiesNotBackError() error {
	var parts, fix []string
	for _, d := range o.drift {
		parts = append(parts, fmt.Sprintf("listener %d has policies [%s], not [%s]", d.port, strings.Join(d.current, " "), strings.Join(d.recorded, " ")))
		fix = append(fix, fmt.Sprintf("aws elb set-load-balancer-policies-of-listener --load-balancer-name %s --load-balancer-port %d --policy-names %s",
			o.name, d.port, strings.Join(d.recorded, " ")))
	}
	err := fmt.Errorf("%w: classic ELB %s: listeners point at %s, but a switch (or its undo) could not put back the listener policies it had read (tag %s is still set): %s",
		target.ErrInconsistent, o.name, o.colorPort(o.traffic), tagIntent, strings.Join(parts, "; "))
	fix = append(fix, fmt.Sprintf("aws elb remove-tags --load-balancer-names %s --tags Key=%s", o.name, tagIntent))
	return target.Hinted(err, "run `oops repair` to re-attach them (the next switch refuses until then); or by hand:\n  "+strings.Join(fix, "\n  "))
}
