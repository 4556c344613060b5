package alb

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/target"
)

// explain turns the error of API operation op on what (a listener, a
// target group; may be empty) into one line.
func (t *Target) explain(op, what string, err error) error {
	var already *target.AWSError
	if err == nil || errors.As(err, &already) {
		return err
	}
	call := fmt.Sprintf("%s: %s", t, op)
	if what != "" {
		call += " " + what
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		// Say what happened on the wire, not the SDK's retry bookkeeping.
		var ue *url.Error
		if errors.As(err, &ue) {
			return &target.AWSError{Msg: fmt.Sprintf("%s: no answer from AWS: %v", call, ue), Err: err}
		}
		return &target.AWSError{Msg: fmt.Sprintf("%s: %v", call, err), Err: err}
	}
	code := ae.ErrorCode()
	msg, ok := target.SayAPIError(code, call, "elasticloadbalancing:"+op)
	switch {
	case ok:
	case code == "ListenerNotFound" || code == "RuleNotFound" || code == "TargetGroupNotFound":
		msg = fmt.Sprintf("%s: %s (changed meanwhile?); run oops status", call, code)
	default:
		msg = fmt.Sprintf("%s: %s", call, code)
	}
	if said := strings.Join(strings.Fields(ae.ErrorMessage()), " "); said != "" {
		msg += " (AWS: " + said + ")"
	}
	return &target.AWSError{Msg: msg, Err: err}
}
