package corpus

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/core"
)

// Envelope is a LookupEvents event without its CloudTrailEvent: the fields CloudTrail indexes and
// filters on. Its JSON names are LookupEvents' own, so field-map paths such as
// "Resources.0.ResourceName" address it the same way whether it came from AWS or from a corpus.
type Envelope struct {
	EventID     string     `json:"EventId"`
	EventName   string     `json:"EventName,omitempty"`
	EventSource string     `json:"EventSource,omitempty"`
	EventTime   time.Time  `json:"EventTime,omitzero"` // RFC 3339; left out when unknown
	Username    string     `json:"Username,omitempty"`
	AccessKeyID string     `json:"AccessKeyId,omitempty"`
	ReadOnly    string     `json:"ReadOnly,omitempty"` // "true" or "false", a string as in LookupEvents
	Resources   []Resource `json:"Resources"`
}

// Resource is one entry of an event's Resources list.
type Resource struct {
	ResourceType string `json:"ResourceType,omitempty"`
	ResourceName string `json:"ResourceName,omitempty"`
}

// EnvelopeFromRecord derives the envelope CloudTrail would return alongside record, for records
// that were stored without one (trail files, exports). eventID and eventTime are passed in because
// the caller has already resolved them (a hashed id, @timestamp) and the envelope must agree.
func EnvelopeFromRecord(record []byte, eventID string, eventTime time.Time) Envelope {
	r := gjson.ParseBytes(record)
	env := Envelope{
		EventID:     eventID,
		EventName:   r.Get("eventName").String(),
		EventSource: r.Get("eventSource").String(),
		EventTime:   eventTime.UTC(),
		Username:    usernameOf(r.Get("userIdentity")),
		AccessKeyID: r.Get("userIdentity.accessKeyId").String(),
		Resources:   []Resource{},
	}
	if ro := r.Get("readOnly"); ro.Exists() && ro.Type != gjson.Null {
		// readOnly is a JSON bool in most records but a string in some hand-made ones.
		env.ReadOnly = fmt.Sprint(ro.Bool() || strings.EqualFold(ro.String(), "true"))
	}
	r.Get("resources").ForEach(func(_, v gjson.Result) bool {
		env.Resources = append(env.Resources, Resource{
			ResourceType: v.Get("type").String(),
			ResourceName: v.Get("ARN").String(),
		})
		return true
	})
	return env
}

// usernameOf follows what LookupEvents shows as Username: the IAM user name, the session name of
// an assumed role, "root" for the root user.
func usernameOf(id gjson.Result) string {
	if n := id.Get("userName").String(); n != "" {
		return n
	}
	arn := id.Get("arn").String()
	switch id.Get("type").String() {
	case "Root":
		return "root"
	case "AssumedRole", "IAMUser", "FederatedUser":
		if i := strings.LastIndexByte(arn, '/'); i >= 0 && i < len(arn)-1 {
			return arn[i+1:]
		}
	}
	if strings.Contains(arn, ":assumed-role/") {
		if i := strings.LastIndexByte(arn, '/'); i >= 0 && i < len(arn)-1 {
			return arn[i+1:]
		}
	}
	return ""
}

// MarshalEnvelope encodes env for core.RawEvent.Envelope.
func MarshalEnvelope(env Envelope) json.RawMessage {
	if env.Resources == nil {
		env.Resources = []Resource{}
	}
	b, err := json.Marshal(env)
	if err != nil {
		// Envelope has only strings, a time and a slice of strings: Marshal cannot fail.
		panic(fmt.Sprintf("corpus: marshal envelope: %v", err))
	}
	return b
}

// EnvelopeOf returns the envelope of ev: the stored one when there is one, else one derived from
// the record.
func EnvelopeOf(ev core.RawEvent) (Envelope, error) {
	if len(ev.Envelope) == 0 {
		return EnvelopeFromRecord(ev.Record, ev.EventID, ev.EventTime), nil
	}
	var env Envelope
	if err := json.Unmarshal(ev.Envelope, &env); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope of event %s: %w", ev.EventID, err)
	}
	if env.EventID == "" {
		env.EventID = ev.EventID
	}
	if env.EventTime.IsZero() {
		env.EventTime = ev.EventTime
	}
	if env.Resources == nil {
		env.Resources = []Resource{}
	}
	return env, nil
}
