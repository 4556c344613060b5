package cmd

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/oops-deploy/oops/workflow"
)

var _ workflow.SNSPublisher = (*sns.Client)(nil)

// snsClient is an SNS client on the standard AWS chain for region, the
// region of the topic an sns: notify destination names.
func (f *Factory) snsClient(ctx context.Context, region string) (workflow.SNSPublisher, error) {
	cfg, err := f.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	return sns.NewFromConfig(cfg, func(o *sns.Options) { o.Region = region }), nil
}
