package cmd

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// callerIdentityAPI is the one STS call oops makes.
type callerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ callerIdentityAPI = (*sts.Client)(nil)

// awsCaller asks STS who the credentials belong to; "" when it cannot
// tell (no credentials, no network): history then names the git user.
func (f *Factory) awsCaller(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := f.AWSConfig(ctx)
	if err != nil {
		return ""
	}
	var api callerIdentityAPI = sts.NewFromConfig(cfg)
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return ""
	}
	return aws.ToString(out.Arn)
}
