package target

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
