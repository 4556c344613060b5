package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/oops-deploy/oops/internal/awstest"
)

// notifyCmds are the testscript commands of the hooks and notifications
// scripts.
func notifyCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		// sns-topic NAME: an SNS topic in the script's moto account (after
		// aws-start), its ARN in $TOPIC_ARN; every @TOPIC@ in .oopsrc
		// becomes that ARN.
		"sns-topic": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 1 {
				ts.Fatalf("usage: sns-topic NAME")
			}
			client := sns.NewFromConfig(awstest.Config(ts.Getenv("MOTO_ACCOUNT_URL")))
			out, err := client.CreateTopic(context.Background(), &sns.CreateTopicInput{Name: aws.String(args[0])})
			ts.Check(err)
			ts.Setenv("TOPIC_ARN", aws.ToString(out.TopicArn))
			rc := ts.MkAbs(".oopsrc")
			data, err := os.ReadFile(rc)
			ts.Check(err)
			ts.Check(os.WriteFile(rc, []byte(strings.ReplaceAll(string(data), "@TOPIC@", aws.ToString(out.TopicArn))), 0o644))
		},
		// sns-messages ARN: print each message moto says was published to
		// the topic, one line each, "SUBJECT | MESSAGE".
		"sns-messages": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 1 {
				ts.Fatalf("usage: sns-messages TOPIC-ARN")
			}
			msgs, err := awstest.SNSMessages(ts.Getenv("MOTO_ACCOUNT_URL"), args[0])
			ts.Check(err)
			for _, m := range msgs {
				fmt.Fprintf(ts.Stdout(), "%v | %v\n", m.Subject, m.Message)
			}
		},
		// webhook-receiver FILE: a webhook on 127.0.0.1 for the rest of
		// the script, which appends each body it gets to FILE as one line;
		// every @WEBHOOK@ in .oopsrc becomes its URL.
		"webhook-receiver": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 1 {
				ts.Fatalf("usage: webhook-receiver FILE")
			}
			out := ts.MkAbs(args[0])
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				defer mu.Unlock()
				f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				defer f.Close()
				_, _ = f.Write(append(bytes.ReplaceAll(body, []byte("\n"), nil), '\n'))
			}))
			ts.Defer(srv.Close)
			rc := ts.MkAbs(".oopsrc")
			data, err := os.ReadFile(rc)
			ts.Check(err)
			ts.Check(os.WriteFile(rc, []byte(strings.ReplaceAll(string(data), "@WEBHOOK@", srv.URL+"/oops")), 0o644))
		},
	}
}
