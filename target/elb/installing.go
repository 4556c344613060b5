package elb

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbsdk "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

var _ target.InstallRecorder = (*Target)(nil)

// installingTag is oops:<color>-installing: the commit being installed on
// that color, "" once SetCommit recorded it as passed.
func installingTag(c string) string { return "oops:" + c + "-installing" }

// verifiedTag clears the installing mark of c (an empty value, in the same
// AddTags call as the commit: no extra call).
func verifiedTag(c release.Color) types.Tag {
	return types.Tag{Key: aws.String(installingTag(string(c))), Value: aws.String("")}
}

// SetInstalling marks color c as installing commit (see
// target.InstallRecorder): one AddTags call.
func (t *Target) SetInstalling(ctx context.Context, c release.Color, commit string) error {
	if !c.Valid() {
		return fmt.Errorf("record install: %q is not a color", c)
	}
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	_, err := t.api.AddTags(ctx, &elbsdk.AddTagsInput{LoadBalancerNames: []string{t.name},
		Tags: []types.Tag{{Key: aws.String(installingTag(string(c))), Value: aws.String(commit)}}})
	t.forget()
	return t.explain("AddTags", err)
}
