package alb

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/oops-deploy/oops/target"
)

// explain turns the error of API operation op on what (a listener, a
// target group; may be empty) into one line.
func (t *Target) explain(op, what string, err error) error {
	call := fmt.Sprintf("%s: %s", t, op)
	if what != "" {
		call += " " + what
	}
	return target.APICall{
		Name: call, Perm: "elasticloadbalancing:" + op,
		Stale: []string{"ListenerNotFound", "RuleNotFound", "TargetGroupNotFound"},
		NoAnswer: func(err error) string {
			// Say what happened on the wire, not the SDK's retry bookkeeping.
			var ue *url.Error
			if errors.As(err, &ue) {
				return fmt.Sprintf("%s: no answer from AWS: %v", call, ue)
			}
			return fmt.Sprintf("%s: %v", call, err)
		},
	}.Explain(err)
}
