package cmd

import (
	"errors"

	"github.com/aws/smithy-go"
)

func isAWSError(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae)
}
