package asg

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/oops-deploy/oops/release"
)

func b64(s string) *string { return aws.String(base64.StdEncoding.EncodeToString([]byte(s))) }

// The launch template version a deploy creates: the commit on the
// instances, their other tags kept, user data that fetches the release.
func TestVersionData(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("b", 40)
	for _, tc := range []struct {
		name     string
		cur      ec2types.ResponseLaunchTemplateData
		wantUD   string
		wantErr  string
		wantTags map[string]string
	}{
		{name: "no user data: the default", wantUD: DefaultUserData,
			wantTags: map[string]string{TagCommit: sha, TagColor: "green"}},
		{name: "user data that fetches is kept", cur: ec2types.ResponseLaunchTemplateData{UserData: b64("#!/bin/sh\noops hook fetch --dir /srv/x\n")},
			wantUD: "#!/bin/sh\noops hook fetch --dir /srv/x\n", wantTags: map[string]string{TagCommit: sha, TagColor: "green"}},
		{name: "user data that does not fetch", cur: ec2types.ResponseLaunchTemplateData{UserData: b64("#!/bin/sh\n./start\n")},
			wantErr: `does not run "oops hook fetch"`},
		{name: "instance tags kept, old commit replaced", cur: ec2types.ResponseLaunchTemplateData{TagSpecifications: []ec2types.LaunchTemplateTagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("team"), Value: aws.String("web")}, {Key: aws.String(TagCommit), Value: aws.String("old")}}},
		}}, wantUD: DefaultUserData, wantTags: map[string]string{TagCommit: sha, TagColor: "green", "team": "web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := versionData(&tc.cur, DefaultUserData, sha, release.Green)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ud, _ := base64.StdEncoding.DecodeString(aws.ToString(d.UserData))
			if string(ud) != tc.wantUD {
				t.Errorf("user data %q, want %q", ud, tc.wantUD)
			}
			got := map[string]string{}
			for _, ts := range d.TagSpecifications {
				if ts.ResourceType == ec2types.ResourceTypeInstance {
					for _, tg := range ts.Tags {
						got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
					}
				}
			}
			if len(got) != len(tc.wantTags) {
				t.Errorf("instance tags %v, want %v", got, tc.wantTags)
			}
			for k, v := range tc.wantTags {
				if got[k] != v {
					t.Errorf("instance tag %s=%q, want %q", k, got[k], v)
				}
			}
			if d.MetadataOptions == nil || d.MetadataOptions.InstanceMetadataTags != ec2types.LaunchTemplateInstanceMetadataTagsStateEnabled {
				t.Error("instance metadata tags not turned on: the instance could not read its commit")
			}
		})
	}
}

// The metadata options the template had (IMDSv2 required) survive: a
// field given in the new version replaces the source's whole field.
func TestVersionDataKeepsIMDSv2(t *testing.T) {
	t.Parallel()
	cur := ec2types.ResponseLaunchTemplateData{MetadataOptions: &ec2types.LaunchTemplateInstanceMetadataOptions{
		HttpTokens: ec2types.LaunchTemplateHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)}}
	d, err := versionData(&cur, DefaultUserData, strings.Repeat("c", 40), release.Blue)
	if err != nil {
		t.Fatal(err)
	}
	if d.MetadataOptions.HttpTokens != ec2types.LaunchTemplateHttpTokensStateRequired || aws.ToInt32(d.MetadataOptions.HttpPutResponseHopLimit) != 2 {
		t.Fatalf("metadata options %+v: IMDSv2 settings lost", d.MetadataOptions)
	}
}

// FuzzVersionData: whatever user data and instance tags the current
// version holds (base64 or not, tags named like oops's), the new version
// either is refused or launches instances tagged with exactly the commit
// and color given, and user data that runs oops hook fetch and is the old
// user data unchanged (or the default): nothing from the tags gets in.
func FuzzVersionData(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\noops hook fetch\n")), "oops:commit", "../../etc", true)
	f.Add("", "Name", "web", false)
	f.Add("not base64 $(rm -rf /)", "oops:color", "blue; curl x | sh", true)
	f.Fuzz(func(t *testing.T, ud, key, value string, hasUD bool) {
		sha := strings.Repeat("c", 40)
		cur := &ec2types.ResponseLaunchTemplateData{TagSpecifications: []ec2types.LaunchTemplateTagSpecification{{
			ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String(key), Value: aws.String(value)}}}}}
		if hasUD {
			cur.UserData = aws.String(ud)
		}
		d, err := versionData(cur, DefaultUserData, sha, release.Green)
		if err != nil {
			return
		}
		got, err := base64.StdEncoding.DecodeString(aws.ToString(d.UserData))
		if err != nil {
			t.Fatalf("user data not base64: %v", err)
		}
		if !strings.Contains(string(got), FetchCommand) {
			t.Fatalf("user data does not run %s: %q", FetchCommand, got)
		}
		if old, _ := base64.StdEncoding.DecodeString(ud); hasUD && ud != "" && string(got) != string(old) {
			t.Fatalf("user data changed: %q -> %q", old, got)
		}
		commits, colors := 0, 0
		for _, ts := range d.TagSpecifications {
			for _, tg := range ts.Tags {
				if ts.ResourceType != ec2types.ResourceTypeInstance {
					continue
				}
				switch aws.ToString(tg.Key) {
				case TagCommit:
					commits++
					if aws.ToString(tg.Value) != sha {
						t.Fatalf("commit tag %q", aws.ToString(tg.Value))
					}
				case TagColor:
					colors++
					if aws.ToString(tg.Value) != "green" {
						t.Fatalf("color tag %q", aws.ToString(tg.Value))
					}
				}
			}
		}
		if commits != 1 || colors != 1 {
			t.Fatalf("%d commit tags, %d color tags", commits, colors)
		}
	})
}

// A deploy's -m reason in another alphabet is cut to the 255 bytes a
// launch template version description takes, never inside a character
// (EC2 refuses invalid UTF-8, which would fail the deploy).
func TestTruncateKeepsUTF8(t *testing.T) {
	t.Parallel()
	for _, s := range []string{strings.Repeat("é", 200), "a" + strings.Repeat("日本", 100), strings.Repeat("x", 300)} {
		got := truncate(s, 255)
		if len(got) > 255 || !utf8.ValidString(got) || !strings.HasPrefix(s, got) || len(got) < 252 {
			t.Fatalf("truncate(%d bytes) = %d bytes, valid %v", len(s), len(got), utf8.ValidString(got))
		}
	}
}
