// Package backend opens what .oopsrc names: the store, the traffic target,
// what installs releases, and the AWS clients. cmd makes one Set per
// command; the workflows get its methods through workflow.Deps (Deps).
package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/oops-deploy/oops/analysis"
	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/store"
	"github.com/oops-deploy/oops/target"
	"github.com/oops-deploy/oops/target/awsfence"
	"github.com/oops-deploy/oops/workflow"
)

// Env is what opening the backends takes from the process. Every field is
// required unless it says otherwise; they are read when a backend is
// opened, after the command line is parsed.
type Env struct {
	Config  func() (*config.Config, error)
	WorkDir func() (string, error)
	Getenv  func(string) string
	Now     func() time.Time
	// Who is the operator (OS user, host), recorded in switch tags.
	Who func() (user, host string)
	// Region is --region: it wins over .oopsrc and the environment.
	Region func() string
	// Logf prints the AWS targets' progress lines.
	Logf func(format string, args ...any)
	// OnCorrupt is told of a bookkeeping object the index reads around.
	OnCorrupt func(ce *store.CorruptError, instead string)
	// Store, when set, is used instead of the store .oopsrc names (tests).
	Store store.Store
}

// Set opens the backends of one command, each once.
type Set struct {
	env   Env
	store store.Store
}

// New returns the backends of one command.
func New(env Env) *Set { return &Set{env: env, store: env.Store} }

// Deps are the workflows' dependencies that open backends; the caller
// adds how the workflows speak and wait (Report, LockWait).
func (s *Set) Deps() workflow.Deps {
	return workflow.Deps{
		Config: s.env.Config, Store: s.Store, RawStore: s.RawStore, Target: s.MainTarget, Deployer: s.Deployer,
		Deployments: s.Deployments, Index: s.Index, Resolve: s.Resolve, Caller: s.Caller, Credentials: s.Credentials,
		Leftovers: s.Leftovers, Who: s.env.Who, WorkDir: s.env.WorkDir, Now: s.env.Now, Getenv: s.env.Getenv,
		UsesCodeDeploy: s.UsesCodeDeploy, SNS: s.SNS, CloudWatch: s.CloudWatch,
		DeployTarget: func(ctx context.Context, canary int) (target.Target, error) {
			if canary > 0 {
				return s.Target(ctx, TargetOptions{Weighted: "oops deploy --canary"})
			}
			return s.MainTarget(ctx)
		},
	}
}

// AWSConfig loads the standard AWS chain (env, profile, SSO, IMDS) with the
// region from --region, then .oopsrc, then the environment.
func (s *Set) AWSConfig(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	region := s.env.Region()
	if region == "" {
		if c, err := s.env.Config(); err == nil {
			region = c.Region
		}
	}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, target.Hinted(workflow.Usagef("no AWS region configured"),
			`set "region" in .oopsrc, pass --region, or export AWS_REGION`)
	}
	// A command that lost its lock changes nothing more through AWS.
	cfg.APIOptions = append(cfg.APIOptions, awsfence.Middleware)
	return cfg, nil
}

// callerIdentityAPI is the one STS call oops makes.
type callerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

var _ callerIdentityAPI = (*sts.Client)(nil)

// Caller asks STS who the credentials belong to; "" when it cannot tell
// (no credentials, no network): history then names the git user.
func (s *Set) Caller(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	arn, _, err := s.callerARN(ctx)
	if err != nil {
		return ""
	}
	return arn
}

// Credentials says whom the AWS credentials belong to ("ARN in region"),
// or why they cannot be used (oops doctor).
func (s *Set) Credentials(ctx context.Context) (string, error) {
	arn, region, err := s.callerARN(ctx)
	if err != nil {
		return "", err
	}
	return arn + " in " + region, nil
}

func (s *Set) callerARN(ctx context.Context) (arn, region string, err error) {
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return "", "", err
	}
	var api callerIdentityAPI = sts.NewFromConfig(cfg)
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", err
	}
	return aws.ToString(out.Arn), cfg.Region, nil
}

// CloudWatch is a CloudWatch client on the standard AWS chain, for the
// bake's alarms and metrics.
func (s *Set) CloudWatch(ctx context.Context) (analysis.CloudWatchAPI, error) {
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	return cloudwatch.NewFromConfig(cfg, analysis.QueryProtocol), nil
}

var _ workflow.SNSPublisher = (*sns.Client)(nil)

// SNS is an SNS client on the standard AWS chain for region, the region of
// the topic an sns: notify destination names.
func (s *Set) SNS(ctx context.Context, region string) (workflow.SNSPublisher, error) {
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	return sns.NewFromConfig(cfg, func(o *sns.Options) { o.Region = region }), nil
}
