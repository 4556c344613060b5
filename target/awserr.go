package target

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Attempts counts the attempts the SDK makes of one call, retries
// included: add Count to that call's APIOptions.
type Attempts struct{ n atomic.Int32 }

// Count is the APIOptions entry that counts each attempt.
func (a *Attempts) Count(s *middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("oops:attempts", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		a.n.Add(1)
		return next.HandleFinalize(ctx, in)
	})
	if _, ok := s.Finalize.Get("Retry"); ok {
		return s.Finalize.Insert(mw, "Retry", middleware.After)
	}
	return s.Finalize.Add(mw, middleware.After)
}

// Retried reports whether the SDK made more than one attempt.
func (a *Attempts) Retried() bool { return a != nil && a.n.Load() > 1 }

// Refused reports whether err is AWS refusing a call outright, so that
// the call is known to have changed nothing: an API error with a client
// error status (access denied, validation, a limit), from a call the SDK
// did not retry (att, when the caller counted them; nil: only a call the
// SDK gave up on after retries is known to have been retried). A server
// error (5xx, or a 502 from something in between) may come after the
// request was applied; and once the SDK retried, an earlier attempt may
// have been applied whatever the last one was answered (a lost answer,
// then throttling, or a deployment limit the first attempt's deployment
// now takes).
func Refused(err error, att *Attempts) bool {
	if att.Retried() {
		return false
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	var gaveUp *retry.MaxAttemptsError
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &gaveUp) || errors.As(err, &quota) {
		return false
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
		return false
	}
	return true
}

// AWSError is an AWS failure said in one line that names the target, the
// call and what is missing; it wraps the SDK error so the CLI exits with
// its AWS code.
type AWSError struct {
	Msg string
	Err error
}

func (e *AWSError) Error() string { return e.Msg }
func (e *AWSError) Unwrap() error { return e.Err }

// SayAPIError says the AWS error codes every backend meets the same way:
// access denied, naming perm (what the AWS identity in use needs), and
// throttling. call names the target and the API call, e.g.
// "classic ELB web: DescribeLoadBalancers". ok is false for any other
// code: the backend says those.
func SayAPIError(code, call, perm string) (msg string, ok bool) {
	switch code {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized":
		return call + ": access denied: the AWS identity in use needs the permission " + perm, true
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		return call + ": AWS is throttling requests (" + code + "); wait a few seconds and run the command again", true
	}
	return "", false
}

// APICall says the failures of one AWS call of a backend in one line.
type APICall struct {
	// Name is the target and the operation (and what it acts on), e.g.
	// "ALB web: ModifyListener listener/app/web/1"; Perm the IAM permission
	// the operation needs.
	Name, Perm string
	// Stale are the error codes that mean what the call names changed
	// meanwhile (oops status then tells what is there).
	Stale []string
	// Says is what the backend says of other codes it knows ("": nothing
	// special); nil: none.
	Says func(code string) string
	// NoAnswer says an error that carries no API code (nothing answered,
	// a connection cut).
	NoAnswer func(err error) string
}

// Explain turns err into an *AWSError that says c's failure: an error
// already said passes through; an API error is said by SayAPIError, by
// Says, as stale, or by its code, with AWS's own message after it.
func (c APICall) Explain(err error) error {
	var already *AWSError
	if err == nil || errors.As(err, &already) {
		return err
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return &AWSError{Msg: c.NoAnswer(err), Err: err}
	}
	code := ae.ErrorCode()
	msg, ok := SayAPIError(code, c.Name, c.Perm)
	switch {
	case ok:
	case c.Says != nil && c.Says(code) != "":
		msg = c.Says(code)
	case slices.Contains(c.Stale, code):
		msg = fmt.Sprintf("%s: %s (changed meanwhile?); run oops status", c.Name, code)
	default:
		msg = fmt.Sprintf("%s: %s", c.Name, code)
	}
	if said := strings.Join(strings.Fields(ae.ErrorMessage()), " "); said != "" {
		msg += " (AWS: " + said + ")"
	}
	return &AWSError{Msg: msg, Err: err}
}
