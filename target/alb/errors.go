package alb

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"
)

// awsError is an AWS failure said in one line that names the ALB, the call
// and what is missing; it wraps the SDK error so the CLI exits with its AWS
// code.
type awsError struct {
	msg string
	err error
}

func (e *awsError) Error() string { return e.msg }
func (e *awsError) Unwrap() error { return e.err }

// explain turns the error of API operation op on what (a listener, a
// target group; may be empty) into one line.
func (t *Target) explain(op, what string, err error) error {
	var already *awsError
	if err == nil || errors.As(err, &already) {
		return err
	}
	call := op
	if what != "" {
		call += " " + what
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		// Say what happened on the wire, not the SDK's retry bookkeeping.
		var ue *url.Error
		if errors.As(err, &ue) {
			return &awsError{msg: fmt.Sprintf("%s: %s: no answer from AWS: %v", t, call, ue), err: err}
		}
		return &awsError{msg: fmt.Sprintf("%s: %s: %v", t, call, err), err: err}
	}
	code := ae.ErrorCode()
	var msg string
	switch code {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
		msg = fmt.Sprintf("%s: %s: access denied: the AWS identity in use needs the permission elasticloadbalancing:%s", t, call, op)
	case "Throttling", "ThrottlingException", "RequestLimitExceeded":
		msg = fmt.Sprintf("%s: %s: AWS is throttling requests (%s); wait a few seconds and run the command again", t, call, code)
	case "ListenerNotFound", "RuleNotFound", "TargetGroupNotFound":
		msg = fmt.Sprintf("%s: %s: %s (changed meanwhile?); run oops status", t, call, code)
	default:
		msg = fmt.Sprintf("%s: %s: %s", t, call, code)
	}
	if said := strings.Join(strings.Fields(ae.ErrorMessage()), " "); said != "" {
		msg += " (AWS: " + said + ")"
	}
	return &awsError{msg: msg, err: err}
}
