package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trailproof/trailproof/internal/redact"
)

// Limits of an action document.
const (
	maxActionIDLen = 256
	maxActorValue  = 1024 // any one actor key or expected event
)

// Field names of the action document.
const (
	fRunID            = "runId" // in a run start only
	fJobID            = "jobId"
	fActionID         = "actionId"
	fStartTime        = "startTime"
	fActor            = "actor"
	fExpectedEvents   = "expectedEvents"
	fUserAgentToken   = "userAgentToken"
	fHosts            = "hosts"
	fAccessKeyIDs     = "accessKeyIds"
	fPrincipals       = "principals"
	fRoleSessionNames = "roleSessionNames"
)

var actionFields = []string{fJobID, fActionID, fStartTime, fActor, fExpectedEvents}

var actorFields = []string{fUserAgentToken, fHosts, fAccessKeyIDs, fPrincipals, fRoleSessionNames}

// roleSessionNamePattern is STS's constraint on RoleSessionName: a name outside it can never
// appear in CloudTrail, so an actor carrying one is a mistake worth reporting.
var roleSessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// ParseAction decodes an action document strictly (unknown fields are refused, in the actor
// too), validates it and returns it with startTime in UTC. Problems are EINVALID *Errors naming
// the field: jobId, startTime, actor.accessKeyIds[0], expectedEvents[2].
func ParseAction(data []byte) (*Action, error) {
	a, _, err := parseAction(data, false)
	return a, err
}

// ParseRunStart decodes the body of a run start: an action that may also carry the run's ID
// ("runId", 1 to 80 characters that can name a Step Functions execution). runID is "" when the
// body names none.
func ParseRunStart(data []byte) (runID string, a *Action, err error) {
	a, runID, err = parseAction(data, true)
	return runID, a, err
}

// runIDPattern: a run ID names its Step Functions execution, whose names are at most 80
// characters and exclude most punctuation.
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

// CheckRunID refuses a run ID that cannot name a Step Functions execution, naming field.
func CheckRunID(field, id string) error {
	if !runIDPattern.MatchString(id) {
		return FieldError(field, "must be 1 to 80 characters of letters, digits, '.', '_' and '-', starting with a letter or digit")
	}
	return nil
}

// parseAction decodes an action document; withRunID accepts a "runId" member beside it.
func parseAction(data []byte, withRunID bool) (*Action, string, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	members, err := scanDocument(data, "", "the action")
	if err != nil {
		return nil, "", err
	}
	if err := checkDuplicates(members); err != nil {
		return nil, "", err
	}
	a := &Action{}
	var startTime, runID string
	for _, m := range members {
		var err error
		switch m.key {
		case fJobID:
			a.JobID, _, err = decodeString(m)
		case fActionID:
			a.ActionID, _, err = decodeString(m)
		case fStartTime:
			startTime, _, err = decodeString(m)
			if err == nil && startTime != "" {
				a.StartTime, err = parseStartTime(m, startTime)
			}
		case fActor:
			err = decodeActor(m, &a.Actor)
		case fExpectedEvents:
			a.ExpectedEvents, _, err = decodeStringList(m)
		case fRunID:
			if !withRunID {
				err = atLine(unknownFieldError(m.field, m.key, actionFields), m)
				break
			}
			runID, err = decodeRunID(m)
		default:
			err = atLine(unknownFieldError(m.field, m.key, actionFields), m)
		}
		if err != nil {
			return nil, "", err
		}
	}
	if errs := checkAction(a); len(errs) > 0 {
		return nil, "", mostUseful(errs, members)
	}
	return a, runID, nil
}

// ValidateAction checks an action built in Go with the checks ParseAction makes.
func ValidateAction(a *Action) error {
	if a == nil {
		return Errorf(EINVALID, "no action")
	}
	if errs := checkAction(a); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// LoadActionFile reads and parses an action file; its errors name the file.
func LoadActionFile(path string) (*Action, error) {
	data, err := readInputFile(path)
	if err != nil {
		return nil, err
	}
	a, err := ParseAction(data)
	if err != nil {
		return nil, InFile(path, err)
	}
	return a, nil
}

// decodeRunID reads the runId member of a run start (null reads as "" and is refused as empty).
func decodeRunID(m member) (string, error) {
	var id string
	if err := json.Unmarshal(m.raw, &id); err != nil {
		return "", FieldError(fRunID, "must be a string")
	}
	return id, CheckRunID(fRunID, id)
}

// parseStartTime reads RFC 3339 (fractional seconds allowed) and keeps the instant in UTC, so
// that every run records its window in one zone whatever the Director's offset.
func parseStartTime(m member, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		line, col := position(m.doc, m.off)
		return time.Time{}, FieldError(m.field, "%q is not an RFC 3339 time; write it like \"2024-07-30T21:31:05Z\" (line %d, column %d)",
			redact.Truncate(s, 64), line, col)
	}
	return t.UTC(), nil
}

func decodeActor(m member, actor *Actor) error {
	if isNull(m.raw) {
		return nil
	}
	members, err := scanObject(m.doc, m, "")
	if err != nil {
		return err
	}
	if err := checkDuplicates(members); err != nil {
		return err
	}
	for _, am := range members {
		var err error
		switch am.key {
		case fUserAgentToken:
			actor.UserAgentToken, _, err = decodeString(am)
		case fHosts:
			actor.Hosts, _, err = decodeStringList(am)
		case fAccessKeyIDs:
			actor.AccessKeyIDs, _, err = decodeStringList(am)
		case fPrincipals:
			actor.Principals, _, err = decodeStringList(am)
		case fRoleSessionNames:
			actor.RoleSessionNames, _, err = decodeStringList(am)
		default:
			err = atLine(unknownFieldError(am.field, am.key, actorFields), am)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func unknownFieldError(field, key string, allowed []string) *Error {
	field = redact.Truncate(field, 128)
	if s := suggest(key, allowed); s != "" {
		return FieldError(field, "unknown field; did you mean %q?", s)
	}
	return FieldError(field, "unknown field; the fields here are %s", strings.Join(allowed, ", "))
}

// checkAction makes every semantic check of a decoded action, in document-design order.
func checkAction(a *Action) []*Error {
	var errs []*Error
	add := func(e *Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	add(checkActionID(fJobID, a.JobID))
	add(checkActionID(fActionID, a.ActionID))
	if a.StartTime.IsZero() {
		add(FieldError(fStartTime, "is required: when the action started, in RFC 3339 (e.g. \"2024-07-30T21:31:05Z\")"))
	}
	actor := a.Actor
	if actor.UserAgentToken != "" {
		add(checkActorValue(fActor+"."+fUserAgentToken, actor.UserAgentToken))
	}
	for i, h := range actor.Hosts {
		add(checkActorValue(fmt.Sprintf("%s.%s[%d]", fActor, fHosts, i), h))
	}
	for i, k := range actor.AccessKeyIDs {
		add(checkAccessKeyID(fmt.Sprintf("%s.%s[%d]", fActor, fAccessKeyIDs, i), k))
	}
	for i, p := range actor.Principals {
		add(checkActorValue(fmt.Sprintf("%s.%s[%d]", fActor, fPrincipals, i), p))
	}
	for i, n := range actor.RoleSessionNames {
		if !roleSessionNamePattern.MatchString(n) {
			add(FieldError(fmt.Sprintf("%s.%s[%d]", fActor, fRoleSessionNames, i),
				"must be a role session name: 2 to 64 characters of letters, digits and _+=,.@-"))
		}
	}
	for i, e := range a.ExpectedEvents {
		add(checkExpectedEvent(fmt.Sprintf("%s[%d]", fExpectedEvents, i), e))
	}
	if !actor.HasKeys() && len(a.ExpectedEvents) == 0 {
		// Nothing would tell the action's events from any other: every run would end
		// "not logged" without having looked for anything.
		add(FieldError(fActor, "needs at least one key (userAgentToken, hosts, accessKeyIds, principals or roleSessionNames), "+
			"or give expectedEvents: with neither, nothing tells the action's events apart and no verdict could be earned"))
	}
	return errs
}

func checkActionID(field, s string) *Error {
	switch {
	case strings.TrimSpace(s) == "":
		return FieldError(field, "is required (a non-blank string of up to %d characters)", maxActionIDLen)
	case utf8.RuneCountInString(s) > maxActionIDLen:
		return FieldError(field, "is too long: at most %d characters", maxActionIDLen)
	case hasControl(s):
		return FieldError(field, "must not contain control characters")
	}
	return nil
}

// checkActorValue requires a non-blank printable value: a blank key would match every event.
func checkActorValue(field, s string) *Error {
	switch {
	case strings.TrimSpace(s) == "":
		return FieldError(field, "must not be empty (an empty key would match every event)")
	case utf8.RuneCountInString(s) > maxActorValue:
		return FieldError(field, "is too long: at most %d characters", maxActorValue)
	case hasControl(s):
		return FieldError(field, "must not contain control characters")
	}
	return nil
}

// checkExpectedEvent accepts "source:name" (source a full event source or a service prefix such
// as ec2) or "name".
func checkExpectedEvent(field, s string) *Error {
	const form = `write "source:name" (e.g. "ec2.amazonaws.com:GetPasswordData") or "name"`
	if len(s) > maxActorValue {
		return FieldError(field, "is too long: at most %d characters", maxActorValue)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return FieldError(field, "must not contain spaces; %s", form)
	}
	if strings.Count(s, ":") > 1 {
		return FieldError(field, "has more than one ':'; %s", form)
	}
	source, name, hasSource := strings.Cut(s, ":")
	if !hasSource {
		source, name = "", s
	}
	switch {
	case name == "":
		return FieldError(field, "needs an event name; %s", form)
	case hasSource && source == "":
		return FieldError(field, "has an empty source before ':'; %s", form)
	}
	return nil
}
