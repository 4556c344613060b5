package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/oops-deploy/oops/config"
	"github.com/oops-deploy/oops/release"
)

// defaultNotifyTimeout is notify-timeout when .oopsrc does not set it.
const defaultNotifyTimeout = 5 * time.Second

// SNSPublisher is the one SNS call notifications make.
type SNSPublisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// notify sends ev to every notify destination at once. Each gets a try
// and, if that fails, one more, all within notify-timeout: a destination
// that does not answer never holds a command longer, nor fails it. It
// warns about each destination that did not take ev and returns them,
// for the event to record.
func (r *Runner) notify(ctx context.Context, ev *release.Event) []string {
	c, err := r.d.Config()
	if err != nil || len(c.Values.Notify) == 0 {
		return nil
	}
	timeout := c.Values.NotifyTimeout
	if timeout <= 0 {
		timeout = defaultNotifyTimeout
	}
	// Its own deadline: an interrupted command still tells.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	body, err := json.Marshal(ev)
	if err != nil {
		r.warnf("could not notify of this %s: encode the event: %v", ev.Action, err)
		return nil
	}
	text := EventText(ev)
	dests := c.Values.Notify
	errs := make([]error, len(dests))
	var wg sync.WaitGroup
	for i, d := range dests {
		wg.Go(func() { errs[i] = r.sendTwice(ctx, d, body, text, timeout) })
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, dests[i].String())
			r.warnf("could not notify %s of this %s: %s (it is recorded in history)", dests[i], ev.Action, notifyBrief(err, timeout))
		}
	}
	return failed
}

// sendTwice sends to d with half of ctx's time, and again with what is
// left when that failed.
func (r *Runner) sendTwice(ctx context.Context, d config.Destination, body []byte, text string, timeout time.Duration) error {
	first, cancel := context.WithTimeout(ctx, timeout/2)
	err := r.send(first, d, body, text)
	cancel()
	if err == nil {
		return nil
	}
	// A short pause: a destination that refused at once may be restarting.
	select {
	case <-ctx.Done():
		return err
	case <-time.After(timeout / 10):
	}
	return r.send(ctx, d, body, text)
}

// send delivers one notification to d.
func (r *Runner) send(ctx context.Context, d config.Destination, body []byte, text string) error {
	if d.TopicARN != "" {
		return r.publishSNS(ctx, d.TopicARN, body, text)
	}
	payload := body
	if d.Slack {
		// A Slack incoming webhook takes a message, not an event; & < >
		// escaped as Slack asks, or a reason's <!channel> pings everyone
		// and <url|text> passes a link off as something else.
		payload, _ = json.Marshal(map[string]string{"text": strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(text)})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "oops")
	hc := http.Client{}
	if r.d.HTTP != nil {
		hc = *r.d.HTTP
	}
	// Not followed: a POST redirected turns into a GET without the event
	// (whose 200 would count as delivered), or re-sends it elsewhere.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without the URL: its path or query may be the secret
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 3:
		return fmt.Errorf("it answered %s, a redirect: notify does not follow them; write the URL it redirects to in .oopsrc", resp.Status)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("it answered %s", resp.Status)
	}
	return nil
}

// publishSNS publishes the event to an SNS topic: the JSON as the message,
// the text as its subject.
func (r *Runner) publishSNS(ctx context.Context, arn string, body []byte, text string) error {
	if r.d.SNS == nil {
		return errors.New("no SNS client in this command")
	}
	region := strings.Split(arn, ":")[3] // checked when .oopsrc loaded
	cl, err := r.d.SNS(ctx, region)
	if err != nil {
		return err
	}
	_, err = cl.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(arn),
		Message:  aws.String(string(body)),
		Subject:  aws.String(snsSubject(text)),
	})
	return err
}

// snsSubject is text as an SNS subject allows: printable ASCII, under
// 100 characters.
func snsSubject(text string) string {
	b := make([]byte, 0, 99)
	for _, c := range []byte(text) {
		if len(b) == cap(b) {
			break
		}
		if c < ' ' || c > '~' {
			c = ' '
		}
		b = append(b, c)
	}
	return strings.TrimSpace(string(b))
}

// notifyBrief is why a notification failed, in a few words.
func notifyBrief(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return Brief(err)
}

// EventText is an event in one line, for people: what a Slack webhook
// shows and an SNS subject starts with.
func EventText(ev *release.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "oops %s of %s by %s", ev.Action, ev.App, ev.Who)
	if ev.Target != "" {
		fmt.Fprintf(&b, " on %s", ev.Target)
	}
	side := func(s release.Side) string {
		if s.Commit == "" || s.Commit == "unknown" {
			return string(s.Color)
		}
		if s.Color == "" {
			return release.Short(s.Commit)
		}
		return fmt.Sprintf("%s (%s)", s.Color, release.Short(s.Commit))
	}
	switch f, t := side(ev.From), side(ev.To); {
	case f != "" && t != "":
		fmt.Fprintf(&b, ": %s -> %s", f, t)
	case f != "" || t != "":
		fmt.Fprintf(&b, ": %s", f+t) // a publish, an approval: one side
	}
	fmt.Fprintf(&b, ": %s", strings.ToUpper(ev.Result))
	if ev.Error != "" {
		msg, _, _ := strings.Cut(ev.Error, "\n")
		fmt.Fprintf(&b, " (%s)", msg)
	}
	if ev.NoSwitch && ev.Error == "" {
		b.WriteString(", installed only (--no-switch)")
	}
	if ev.Action == release.ActionRollback && ev.Result == release.ResultOK && ev.From.Commit != "" && ev.From.Commit != ev.To.Commit && (ev.To.Color != "" || ev.To.Commit != "") {
		fmt.Fprintf(&b, "; %s is marked BAD", release.Short(ev.From.Commit))
	}
	if ev.Reason != "" {
		fmt.Fprintf(&b, "; reason: %s", ev.Reason)
	}
	return b.String()
}
