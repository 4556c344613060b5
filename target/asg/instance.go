package asg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// Metadata is the part of the instance metadata service (IMDS) client
// oops hook fetch uses.
type Metadata interface {
	GetMetadata(context.Context, *imds.GetMetadataInput, ...func(*imds.Options)) (*imds.GetMetadataOutput, error)
}

// InstanceEC2 is what oops hook fetch asks EC2 when the metadata service
// does not show the instance's tags (instance metadata tags off).
type InstanceEC2 interface {
	DescribeTags(context.Context, *ec2.DescribeTagsInput, ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error)
	DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
}

var _ Metadata = (*imds.Client)(nil)

// Tags EC2 puts on instances launched from a launch template.
const (
	tagTemplateID      = "aws:ec2launchtemplate:id"
	tagTemplateVersion = "aws:ec2launchtemplate:version"
)

// InstanceCommit finds the commit this instance was launched for: its
// oops:commit tag through the metadata service (the launch template
// version a deploy creates turns instance metadata tags on); else, with
// ec (nil: not asked), the tag read from EC2, else the oops:commit of its
// launch template version's instance tags.
func InstanceCommit(ctx context.Context, md Metadata, ec InstanceEC2) (string, error) {
	v, err := metadata(ctx, md, "tags/instance/"+TagCommit)
	if err == nil && v != "" {
		return v, nil
	}
	if err != nil && !notFound(err) {
		return "", fmt.Errorf("read this instance's %s tag from the metadata service: %w", TagCommit, err)
	}
	if ec == nil {
		return "", errors.New("this instance has no " + TagCommit + " tag in its metadata (instance metadata tags are off?)")
	}
	id, err := metadata(ctx, md, "instance-id")
	if err != nil {
		return "", fmt.Errorf("read this instance's id from the metadata service: %w", err)
	}
	out, err := ec.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("resource-id"), Values: []string{id}},
		{Name: aws.String("key"), Values: []string{TagCommit, tagTemplateID, tagTemplateVersion}},
	}})
	if err != nil {
		return "", fmt.Errorf("read the tags of %s: DescribeTags: %w", id, err)
	}
	tags := map[string]string{}
	for _, t := range out.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if c := tags[TagCommit]; c != "" {
		return c, nil
	}
	lt, ver := tags[tagTemplateID], tags[tagTemplateVersion]
	if lt == "" || ver == "" {
		return "", fmt.Errorf("instance %s has no %s tag and no launch template tags: it was not launched by a deploy of oops", id, TagCommit)
	}
	vs, err := ec.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(lt), Versions: []string{ver}})
	if err != nil {
		return "", fmt.Errorf("read launch template %s version %s: DescribeLaunchTemplateVersions: %w", lt, ver, err)
	}
	for _, v := range vs.LaunchTemplateVersions {
		if v.LaunchTemplateData == nil {
			continue
		}
		for _, ts := range v.LaunchTemplateData.TagSpecifications {
			for _, t := range ts.Tags {
				if ts.ResourceType == ec2types.ResourceTypeInstance && aws.ToString(t.Key) == TagCommit {
					return aws.ToString(t.Value), nil
				}
			}
		}
	}
	return "", fmt.Errorf("launch template %s version %s of instance %s carries no %s: it was not made by oops deploy", lt, ver, id, TagCommit)
}

func metadata(ctx context.Context, md Metadata, path string) (string, error) {
	out, err := md.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, 4096))
	return strings.TrimSpace(string(b)), err
}

// notFound: the metadata service has no such path (404).
func notFound(err error) bool {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == 404 {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NotFound"
}
