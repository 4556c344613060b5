package workflow

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/oops-deploy/oops/internal/awstest"
	"github.com/oops-deploy/oops/release"
)

// TestNotifySNS: an sns:<topic-arn> destination gets the event, published
// through the SDK (on moto) with the event's JSON as the message and its
// one-line summary as the subject; a topic that does not exist is warned
// about and recorded, and the rollback stands.
func TestNotifySNS(t *testing.T) {
	m := awstest.Start(t)
	ctx := awstest.Ctx(t)
	client := sns.NewFromConfig(m.Config())
	topic, err := client.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("deploys")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(topic.TopicArn)
	missing := strings.Replace(arn, "deploys", "nobody", 1)
	fx := newFixture(t, `{"application-name": "api", "store": "rel", "notify-timeout": "5s", "notify": ["sns:`+arn+`", "sns:`+missing+`"]}`)
	var mu sync.Mutex
	var regions []string
	fx.d.SNS = func(_ context.Context, region string) (SNSPublisher, error) {
		mu.Lock() // the destinations are sent to in parallel
		defer mu.Unlock()
		regions = append(regions, region)
		return client, nil
	}
	b := newBoard(fx)
	if _, err := fx.runner().Switch(ctx, b, SwitchRequest{Action: release.ActionRollback, Command: "oops rollback", Reason: "500s", Confirm: yes}); err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if r != awstest.Region {
			t.Errorf("an SNS client for region %q, want the topic's %s", r, awstest.Region)
		}
	}

	// What moto says was published to the topic.
	msgs, err := awstest.SNSMessages(m.Direct, arn)
	if err != nil {
		t.Fatal(err)
	}
	var messages, subjects []string
	for _, msg := range msgs {
		messages, subjects = append(messages, msg.Message), append(subjects, msg.Subject)
	}
	if len(messages) != 1 {
		t.Fatalf("the topic got %d messages, want the rollback's: %+v", len(messages), msgs)
	}
	var ev release.Event
	if err := json.Unmarshal([]byte(messages[0]), &ev); err != nil || ev.Action != release.ActionRollback || ev.Reason != "500s" || ev.To.Commit != v1 {
		t.Errorf("published %s (%v), want the rollback to v1", messages[0], err)
	}
	if !strings.HasPrefix(subjects[0], "oops rollback of api by ada") || len(subjects[0]) >= 100 {
		t.Errorf("subject %q", subjects[0])
	}
	evs := history(t, fx)
	if len(evs) != 1 || evs[0].NotifyFailed == nil || len(*evs[0].NotifyFailed) != 1 || (*evs[0].NotifyFailed)[0] != "sns:"+missing {
		t.Errorf("history %+v, want the missing topic recorded as not told", evs)
	}
	if !strings.Contains(fx.errOut.String(), "could not notify sns:"+missing) {
		t.Errorf("stderr:\n%s\nwant a warning for the missing topic", fx.errOut)
	}
}
