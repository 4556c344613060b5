package elb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"
)

// awsError is an AWS failure explained in one line that names the ELB and
// what is missing (a permission, a resource); it wraps the SDK error so
// the CLI maps it to its AWS exit code.
type awsError struct {
	msg string
	err error
}

func (e *awsError) Error() string { return e.msg }
func (e *awsError) Unwrap() error { return e.err }

// explain turns an error from API operation op into an awsError.
func (t *Target) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *awsError
	if errors.As(err, &already) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &awsError{msg: fmt.Sprintf("classic ELB %s: %s: interrupted", t.name, op), err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &awsError{msg: fmt.Sprintf("classic ELB %s: %s: no answer from AWS in time", t.name, op), err: err}
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		// Transport failures (no answer, connection cut): keep the cause.
		// Say what happened on the wire, not the SDK's retry bookkeeping.
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue
		}
		return &awsError{msg: fmt.Sprintf("classic ELB %s: %s: no answer from AWS: %v", t.name, op, cause), err: err}
	}
	code, said := ae.ErrorCode(), oneLine(ae.ErrorMessage())
	var msg string
	switch {
	case code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedOperation" || code == "NotAuthorized":
		msg = fmt.Sprintf("classic ELB %s: %s: access denied: the AWS identity in use needs the permission elasticloadbalancing:%s on this load balancer", t.name, op, op)
	case code == "Throttling" || code == "ThrottlingException" || code == "RequestLimitExceeded" || code == "TooManyRequestsException":
		msg = fmt.Sprintf("classic ELB %s: %s: AWS is throttling requests (%s); wait a few seconds and run the command again", t.name, op, code)
	case code == "LoadBalancerNotFound" || code == "AccessPointNotFound":
		msg = fmt.Sprintf("classic ELB %s not found%s: check elb-name in .oopsrc and the region (--region, AWS_REGION)", t.name, t.inRegion())
	case code == "CertificateNotFound":
		msg = fmt.Sprintf("classic ELB %s: %s: a listener's SSL certificate was not found (IAM or ACM); restore it or point the listener at a new one", t.name, op)
	case code == "PolicyNotFound":
		msg = fmt.Sprintf("classic ELB %s: %s: a listener policy was not found on the load balancer", t.name, op)
	case code == "ListenerNotFound":
		msg = fmt.Sprintf("classic ELB %s: %s: a listener was not found (changed meanwhile?); run oops status", t.name, op)
	default:
		msg = fmt.Sprintf("classic ELB %s: %s: %s", t.name, op, code)
	}
	if said != "" {
		msg += " (AWS: " + said + ")"
	}
	return &awsError{msg: msg, err: err}
}

func (t *Target) inRegion() string {
	if t.opts.Region == "" {
		return ""
	}
	return " in region " + t.opts.Region
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
