package awstest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// SNSMessage is one message published to a topic, as moto kept it.
type SNSMessage struct{ Subject, Message string }

// SNSMessages returns what moto at url says was published to topicARN, in
// order. moto has no API that reads a topic back (AWS does not either:
// its subscribers do); its internal state at /moto-api/data.json keeps
// each notification as [id, message, subject, attributes, group].
func SNSMessages(url, topicARN string) ([]SNSMessage, error) {
	resp, err := http.Get(url + "/moto-api/data.json")
	if err != nil {
		return nil, fmt.Errorf("read moto's state: %w", err)
	}
	defer resp.Body.Close()
	var data struct {
		SNS struct {
			Topic []struct {
				Arn               string  `json:"arn"`
				SentNotifications [][]any `json:"sent_notifications"`
			} `json:"Topic"`
		} `json:"sns"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&data); err != nil {
		return nil, fmt.Errorf("read moto's state: %w", err)
	}
	var msgs []SNSMessage
	for _, tp := range data.SNS.Topic {
		if tp.Arn != topicARN {
			continue
		}
		for _, n := range tp.SentNotifications {
			if len(n) >= 3 {
				msg, _ := n[1].(string)
				subj, _ := n[2].(string)
				msgs = append(msgs, SNSMessage{Subject: subj, Message: msg})
			}
		}
	}
	return msgs, nil
}
