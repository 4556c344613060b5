package backend

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/oops-deploy/oops/target/asg"
)

// InstanceCommit finds the commit this instance was launched for (oops
// hook fetch in user data): its oops:commit tag through the instance
// metadata service at endpoint ("": the SDK's, or
// AWS_EC2_METADATA_SERVICE_ENDPOINT), else through EC2 (its tags, then
// its launch template version's).
func (s *Set) InstanceCommit(ctx context.Context, endpoint string) (string, error) {
	o := imds.Options{Endpoint: endpoint}
	if endpoint != "" {
		// Asked for by name: AWS_EC2_METADATA_DISABLED (set where no
		// metadata service should be dialled) does not apply to it.
		o.ClientEnableState = imds.ClientEnabled
	}
	md := imds.New(o)
	var ec asg.InstanceEC2
	if cfg, err := s.AWSConfig(ctx); err == nil {
		ec = ec2.NewFromConfig(cfg)
	}
	return asg.InstanceCommit(ctx, md, ec)
}
