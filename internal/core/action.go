package core

import (
	"strings"
	"time"
)

// Action is what the Director sends when a job action starts.
type Action struct {
	JobID          string    `json:"jobId"`
	ActionID       string    `json:"actionId"`
	StartTime      time.Time `json:"startTime"`
	Actor          Actor     `json:"actor"`
	ExpectedEvents []string  `json:"expectedEvents,omitempty"`
}

// Actor holds the keys that tie a CloudTrail event to the action.
type Actor struct {
	UserAgentToken   string   `json:"userAgentToken,omitempty"`
	Hosts            []string `json:"hosts,omitempty"`
	AccessKeyIDs     []string `json:"accessKeyIds,omitempty"`
	Principals       []string `json:"principals,omitempty"`
	RoleSessionNames []string `json:"roleSessionNames,omitempty"`
}

// HasKeys reports whether the actor carries any key at all.
func (a Actor) HasKeys() bool {
	return a.UserAgentToken != "" || len(a.Hosts) > 0 || len(a.AccessKeyIDs) > 0 ||
		len(a.Principals) > 0 || len(a.RoleSessionNames) > 0
}

// ExpectedEvent is one entry of expectedEvents: "source:name" or just "name".
type ExpectedEvent struct {
	Source string // e.g. ec2.amazonaws.com, or "" for any source
	Name   string // e.g. GetPasswordData
}

// ParseExpectedEvent splits "ec2.amazonaws.com:GetPasswordData". A short service prefix ("ec2:")
// is read as its amazonaws.com source.
func ParseExpectedEvent(s string) ExpectedEvent {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return ExpectedEvent{Name: s}
	}
	src := s[:i]
	if src != "" && !strings.Contains(src, ".") {
		src += ".amazonaws.com"
	}
	return ExpectedEvent{Source: src, Name: s[i+1:]}
}

// Matches reports whether an event's source and name are this expected event.
func (e ExpectedEvent) Matches(source, name string) bool {
	return name == e.Name && (e.Source == "" || e.Source == source)
}

// globalSources are the services whose events CloudTrail records in us-east-1.
var globalSources = []string{"iam.amazonaws.com", "sts.amazonaws.com", "signin.amazonaws.com"}

// MayTouchGlobalServices reports whether the action's events may live in us-east-1 whatever the
// integration's region: when it names a global service, or names nothing and so may do anything.
func (a *Action) MayTouchGlobalServices() bool {
	if len(a.ExpectedEvents) == 0 {
		return true
	}
	for _, s := range a.ExpectedEvents {
		e := ParseExpectedEvent(s)
		for _, g := range globalSources {
			if e.Source == g || e.Source == "" {
				return true
			}
		}
	}
	return false
}
