// Package awsfence fences AWS calls: a command that lost its lock makes no
// further change through the SDK. It is one middleware on the AWS config,
// so every client built from it (ELB, ELBv2, CodeDeploy, S3, ...) is
// covered, undo steps included, without each backend remembering to ask.
package awsfence

import (
	"context"
	"strings"

	"github.com/aws/smithy-go/middleware"

	"github.com/oops-deploy/oops/target"
)

// Middleware adds the fence check to a client's stack (aws.Config.APIOptions).
// It runs in the finalize step after the retryer, so every attempt of a
// changing call asks target.CheckFence first: the remaining window is one
// HTTP request, the time between the check and AWS acting on it. AWS cannot
// check a token itself, so that window cannot be closed from here.
func Middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("OopsFence",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if Changes(middleware.GetOperationName(ctx)) {
				if err := target.CheckFence(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// Changes reports whether an AWS operation may change something: all but
// the read-only families.
func Changes(op string) bool {
	for _, p := range []string{"Describe", "Get", "List", "Head", "BatchGet"} {
		if strings.HasPrefix(op, p) {
			return false
		}
	}
	return true
}
