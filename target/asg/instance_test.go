package asg

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// fakeIMDS is an instance metadata service on 127.0.0.1 (IMDSv2: a token
// first) serving paths under /latest/meta-data/.
func fakeIMDS(t *testing.T, paths map[string]string) *imds.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			w.Write([]byte("token"))
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != "token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		v, ok := paths[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(v))
	}))
	t.Cleanup(srv.Close)
	return imds.New(imds.Options{Endpoint: srv.URL})
}

// fakeEC2 answers DescribeTags and DescribeLaunchTemplateVersions.
type fakeEC2 struct {
	tags  map[string]string
	ltTag string
}

func (f fakeEC2) DescribeTags(_ context.Context, in *ec2.DescribeTagsInput, _ ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error) {
	out := &ec2.DescribeTagsOutput{}
	for k, v := range f.tags {
		out.Tags = append(out.Tags, ec2types.TagDescription{Key: aws.String(k), Value: aws.String(v), ResourceId: aws.String(in.Filters[0].Values[0])})
	}
	return out, nil
}

func (f fakeEC2) DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	data := &ec2types.ResponseLaunchTemplateData{}
	if f.ltTag != "" {
		data.TagSpecifications = []ec2types.LaunchTemplateTagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String(TagCommit), Value: aws.String(f.ltTag)}}}}
	}
	return &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: []ec2types.LaunchTemplateVersion{{LaunchTemplateData: data}}}, nil
}

func TestInstanceCommit(t *testing.T) {
	t.Parallel()
	sha := strings.Repeat("a", 40)
	for _, tc := range []struct {
		name    string
		md      map[string]string
		ec      InstanceEC2
		want    string
		wantErr string
	}{
		{name: "metadata tag", md: map[string]string{"tags/instance/oops:commit": sha + "\n"}, want: sha},
		{name: "metadata tag, no EC2 asked", md: map[string]string{"tags/instance/oops:commit": sha}, ec: nil, want: sha},
		{name: "EC2 tag", md: map[string]string{"instance-id": "i-1"}, ec: fakeEC2{tags: map[string]string{TagCommit: sha}}, want: sha},
		{name: "launch template", md: map[string]string{"instance-id": "i-1"},
			ec: fakeEC2{tags: map[string]string{tagTemplateID: "lt-1", tagTemplateVersion: "4"}, ltTag: sha}, want: sha},
		{name: "launch template without commit", md: map[string]string{"instance-id": "i-1"},
			ec: fakeEC2{tags: map[string]string{tagTemplateID: "lt-1", tagTemplateVersion: "4"}}, wantErr: "launch template lt-1 version 4 of instance i-1 carries no oops:commit"},
		{name: "not launched by oops", md: map[string]string{"instance-id": "i-1"}, ec: fakeEC2{}, wantErr: "instance i-1 has no oops:commit tag"},
		{name: "no metadata tags, no EC2", md: map[string]string{}, wantErr: "no oops:commit tag in its metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InstanceCommit(context.Background(), fakeIMDS(t, tc.md), tc.ec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
