// Package push reads the CloudTrail events that EventBridge delivers (a rule on an account's
// default bus, forwarded to SQS or posted to `trailproof serve`) and stores each in the push
// partition of its account, region and category, where a run's correlate step finds it next to
// what LookupEvents read. A pushed event is an event seen, never a span read: the ledger does not
// hear of it, so "not logged" still rests on LookupEvents alone.
package push

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
)

// The detail-types CloudTrail sends to EventBridge, and the category each one's events have in
// LookupEvents.
const (
	DetailTypeAPICall      = "AWS API Call via CloudTrail"
	DetailTypeSignin       = "AWS Console Signin via CloudTrail"
	DetailTypeServiceEvent = "AWS Service Event via CloudTrail"
	DetailTypeInsight      = "AWS Insight via CloudTrail"
)

// DetailTypes are the detail-types the ingest accepts (and the EventBridge rule matches).
var DetailTypes = []string{DetailTypeAPICall, DetailTypeSignin, DetailTypeServiceEvent, DetailTypeInsight}

// Partition is where the pushed events of one account, region and category are stored.
func Partition(accountID, region, category string) string {
	if category == core.CategoryManagement {
		category = "management" // the management category is "" in core
	}
	return "push#" + accountID + "#" + region + "#" + category
}

// Envelope is the EventBridge event around a CloudTrail record.
type Envelope struct {
	Version    string          `json:"version,omitempty"`
	ID         string          `json:"id,omitempty"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source,omitempty"`
	Account    string          `json:"account"`
	Time       string          `json:"time,omitempty"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Event is a decoded pushed record and the partition it belongs in.
type Event struct {
	Partition string
	Raw       core.RawEvent
}

// Decode turns one EventBridge envelope into a raw event. Errors are core.EINVALID and name the
// field.
func Decode(b []byte) (Event, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Event{}, invalid("", "not an EventBridge event: "+err.Error())
	}
	category := core.CategoryManagement
	switch env.DetailType {
	case DetailTypeAPICall, DetailTypeSignin, DetailTypeServiceEvent:
	case DetailTypeInsight:
		category = core.CategoryInsight
	case "":
		return Event{}, invalid("detail-type", "missing")
	default:
		return Event{}, invalid("detail-type", fmt.Sprintf("%q is not a CloudTrail detail-type (want one of %s)", env.DetailType, strings.Join(DetailTypes, ", ")))
	}
	if !isAccount(env.Account) {
		return Event{}, invalid("account", fmt.Sprintf("%q is not a 12-digit AWS account ID", env.Account))
	}
	if env.Region == "" {
		return Event{}, invalid("region", "missing")
	}
	var rec struct {
		EventID   string `json:"eventID"`
		EventTime string `json:"eventTime"`
	}
	if len(env.Detail) == 0 || env.Detail[0] != '{' {
		return Event{}, invalid("detail", "missing or not a CloudTrail record (a JSON object)")
	}
	if err := json.Unmarshal(env.Detail, &rec); err != nil {
		return Event{}, invalid("detail", "not a CloudTrail record: "+err.Error())
	}
	if rec.EventID == "" {
		return Event{}, invalid("detail.eventID", "missing")
	}
	t, err := time.Parse(time.RFC3339, rec.EventTime)
	if err != nil {
		return Event{}, invalid("detail.eventTime", fmt.Sprintf("%q is not an RFC 3339 time", rec.EventTime))
	}
	t = t.UTC()
	record := []byte(env.Detail)
	envelope, err := json.Marshal(corpus.EnvelopeFromRecord(record, rec.EventID, t))
	if err != nil {
		return Event{}, fmt.Errorf("push: envelope of %s: %w", rec.EventID, err)
	}
	raw := core.RawEvent{EventID: rec.EventID, EventTime: t, Region: env.Region, Record: record, Envelope: envelope}
	if category == core.CategoryInsight {
		raw.Category = core.CategoryInsight
	}
	return Event{Partition: Partition(env.Account, env.Region, category), Raw: raw}, nil
}

// EnvelopeOf wraps a CloudTrail record as EventBridge would deliver it from account's default bus
// in region (used where the push is simulated: `run --corpus --push-delay`).
func EnvelopeOf(raw core.RawEvent, accountID string) ([]byte, error) {
	dt := DetailTypeAPICall
	var rec struct {
		EventType string `json:"eventType"`
	}
	_ = json.Unmarshal(raw.Record, &rec) // a record without eventType is an API call
	switch {
	case raw.Category == core.CategoryInsight:
		dt = DetailTypeInsight
	case rec.EventType == "AwsConsoleSignIn":
		dt = DetailTypeSignin
	case rec.EventType == "AwsServiceEvent":
		dt = DetailTypeServiceEvent
	}
	return json.Marshal(Envelope{Version: "0", ID: raw.EventID, DetailType: dt, Source: "aws.cloudtrail", Account: accountID,
		Time: raw.EventTime.UTC().Format(time.RFC3339), Region: raw.Region, Resources: []string{}, Detail: raw.Record})
}

// Adder is the part of core.Store the ingest writes to.
type Adder interface {
	AddRawEvents(ctx context.Context, partition string, evs []core.RawEvent) (added int, err error)
}

// Ingest decodes envelopes and stores each event in its partition (de-duplicated by EventID: a
// record delivered twice is stored once). It returns, per envelope, nil or the error that kept it
// out: a bad envelope is reported and the others stored; a store failure fails the envelopes of
// that partition, so that the caller retries them.
func Ingest(ctx context.Context, st Adder, envelopes [][]byte) []error {
	errs := make([]error, len(envelopes))
	var evs []Event
	var index []int
	for i, b := range envelopes {
		ev, err := Decode(b)
		if err != nil {
			errs[i] = err
			continue
		}
		evs, index = append(evs, ev), append(index, i)
	}
	_, failed := Add(ctx, st, evs)
	for k, ev := range evs {
		if err := failed[ev.Partition]; err != nil {
			errs[index[k]] = err
		}
	}
	return errs
}

// Add stores decoded events, one write per partition. It returns how many were new and, by
// partition, the writes that failed.
func Add(ctx context.Context, st Adder, evs []Event) (stored int, failed map[string]error) {
	parts := map[string][]core.RawEvent{}
	var order []string
	for _, ev := range evs {
		if _, ok := parts[ev.Partition]; !ok {
			order = append(order, ev.Partition)
		}
		parts[ev.Partition] = append(parts[ev.Partition], ev.Raw)
	}
	failed = map[string]error{}
	for _, p := range order {
		n, err := st.AddRawEvents(ctx, p, parts[p])
		if err != nil {
			failed[p] = fmt.Errorf("store pushed events in %s: %w", p, err)
			continue
		}
		stored += n
	}
	return stored, failed
}

func invalid(field, msg string) error {
	return &core.Error{Code: core.EINVALID, Field: field, Message: "EventBridge event: " + msg}
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
