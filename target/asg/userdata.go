package asg

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/oops-deploy/oops/release"
)

// DefaultUserData is the user data of a deploy's launch template version
// when the group's has none: it fetches this instance's release (found
// from its oops:commit tag) and starts it. README: "Auto-scaling groups".
const DefaultUserData = `#!/bin/sh
set -eu
# oops: fetch the release this instance was launched for (its oops:commit
# tag), verify its SHA-256 and unpack it, then start it.
cd /opt/app
oops hook fetch --dir /opt/app/current
exec /opt/app/current/start
`

// FetchCommand is what user data must run for a deploy to reach the
// instances.
const FetchCommand = "oops hook fetch"

// versionData is the data of the new launch template version, on top of
// the current version's (SourceVersion): the commit and color tagged on
// its instances (the other instance tags kept), tags readable from the
// metadata service, and the user data.
func versionData(cur *ec2types.ResponseLaunchTemplateData, userData, commit string, c release.Color) (*ec2types.RequestLaunchTemplateData, error) {
	ud := userData
	if cur.UserData != nil && *cur.UserData != "" {
		b, err := base64.StdEncoding.DecodeString(*cur.UserData)
		if err != nil {
			return nil, fmt.Errorf("its user data is not base64: %w", err)
		}
		if !strings.Contains(string(b), FetchCommand) {
			return nil, fmt.Errorf("its user data does not run %q, so its instances would not fetch the release", FetchCommand)
		}
		ud = string(b)
	}
	tags := []ec2types.Tag{{Key: aws.String(TagCommit), Value: aws.String(commit)}, {Key: aws.String(TagColor), Value: aws.String(string(c))}}
	var specs []ec2types.LaunchTemplateTagSpecificationRequest
	for _, ts := range cur.TagSpecifications {
		if ts.ResourceType != ec2types.ResourceTypeInstance {
			specs = append(specs, ec2types.LaunchTemplateTagSpecificationRequest{ResourceType: ts.ResourceType, Tags: ts.Tags})
			continue
		}
		for _, tg := range ts.Tags {
			if k := aws.ToString(tg.Key); k != TagCommit && k != TagColor {
				tags = append(tags, tg)
			}
		}
	}
	specs = append(specs, ec2types.LaunchTemplateTagSpecificationRequest{ResourceType: ec2types.ResourceTypeInstance, Tags: tags})
	// A field given replaces the source version's whole field: the
	// metadata options the template had (IMDSv2 required, hop limit) are
	// carried over.
	md := &ec2types.LaunchTemplateInstanceMetadataOptionsRequest{InstanceMetadataTags: ec2types.LaunchTemplateInstanceMetadataTagsStateEnabled}
	if m := cur.MetadataOptions; m != nil {
		md.HttpTokens, md.HttpEndpoint, md.HttpPutResponseHopLimit, md.HttpProtocolIpv6 = m.HttpTokens, m.HttpEndpoint, m.HttpPutResponseHopLimit, m.HttpProtocolIpv6
	}
	return &ec2types.RequestLaunchTemplateData{
		UserData:          aws.String(base64.StdEncoding.EncodeToString([]byte(ud))),
		TagSpecifications: specs,
		MetadataOptions:   md,
	}, nil
}
