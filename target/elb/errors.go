package elb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/oops-deploy/oops/target"
)

// explain turns an error from API operation op into a *target.AWSError.
func (t *Target) explain(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *target.AWSError
	if errors.As(err, &already) {
		return err
	}
	call := fmt.Sprintf("classic ELB %s: %s", t.name, op)
	switch {
	case errors.Is(err, context.Canceled):
		return &target.AWSError{Msg: call + ": interrupted", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &target.AWSError{Msg: call + ": no answer from AWS in time", Err: err}
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
		return &target.AWSError{Msg: fmt.Sprintf("%s: no answer from AWS: %v", call, cause), Err: err}
	}
	code, said := ae.ErrorCode(), oneLine(ae.ErrorMessage())
	msg, ok := target.SayAPIError(code, call, "elasticloadbalancing:"+op+" on this load balancer")
	switch {
	case ok:
	case code == "LoadBalancerNotFound" || code == "AccessPointNotFound":
		msg = fmt.Sprintf("classic ELB %s not found%s: check elb-name in .oopsrc and the region (--region, AWS_REGION)", t.name, t.inRegion())
	case code == "CertificateNotFound":
		msg = call + ": a listener's SSL certificate was not found (IAM or ACM); restore it or point the listener at a new one"
	case code == "PolicyNotFound":
		msg = call + ": a listener policy was not found on the load balancer"
	case code == "ListenerNotFound":
		msg = call + ": a listener was not found (changed meanwhile?); run oops status"
	default:
		msg = call + ": " + code
	}
	if said != "" {
		msg += " (AWS: " + said + ")"
	}
	return &target.AWSError{Msg: msg, Err: err}
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
