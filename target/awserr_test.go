package target

import (
	"errors"
	"testing"

	"github.com/aws/smithy-go"
)

func TestAPICallExplain(t *testing.T) {
	t.Parallel()
	c := APICall{
		Name: "ALB web: ModifyListener", Perm: "elasticloadbalancing:ModifyListener",
		Stale:    []string{"ListenerNotFound"},
		Says:     func(code string) string { return map[string]string{"Busy": "ALB web: ModifyListener: busy"}[code] },
		NoAnswer: func(err error) string { return "ALB web: ModifyListener: no answer: " + err.Error() },
	}
	api := func(code, msg string) error { return &smithy.GenericAPIError{Code: code, Message: msg} }
	said := &AWSError{Msg: "said before"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{api("AccessDenied", "not  allowed"), "ALB web: ModifyListener: access denied: the AWS identity in use needs the permission elasticloadbalancing:ModifyListener (AWS: not allowed)"},
		{api("Busy", ""), "ALB web: ModifyListener: busy"},
		{api("ListenerNotFound", ""), "ALB web: ModifyListener: ListenerNotFound (changed meanwhile?); run oops status"},
		{api("Odd", "why"), "ALB web: ModifyListener: Odd (AWS: why)"},
		{errors.New("connection reset"), "ALB web: ModifyListener: no answer: connection reset"},
		{said, "said before"},
	} {
		got := c.Explain(tc.err)
		var ae *AWSError
		if !errors.As(got, &ae) || got.Error() != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("Explain(%v) = %v, want %q wrapping it", tc.err, got, tc.want)
		}
	}
	if c.Explain(nil) != nil {
		t.Error("Explain(nil) is not nil")
	}
}
