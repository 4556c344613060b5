package alb

import (
	"context"
	"fmt"

	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/oops-deploy/oops/release"
	"github.com/oops-deploy/oops/target"
)

// TagInstalling records, on a color's target group, the commit being
// installed there that has not passed its health check yet ("" once
// SetCommit recorded it).
const TagInstalling = "oops:installing"

var _ target.InstallRecorder = (*Target)(nil)

// SetInstalling marks color c as installing commit (see
// target.InstallRecorder): one AddTags call on c's target group.
func (t *Target) SetInstalling(ctx context.Context, c release.Color, commit string) error {
	if commit == "" {
		return fmt.Errorf("record install on %s: empty commit", c)
	}
	g, err := t.group(ctx, c)
	if err != nil {
		return err
	}
	if err := target.CheckFence(ctx); err != nil {
		return err
	}
	if _, err := t.api.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{g.arn}, Tags: tags(TagInstalling, commit)}); err != nil {
		return t.explain("AddTags", g.name, err)
	}
	t.mu.Lock()
	t.last = nil
	t.mu.Unlock()
	return nil
}
