package core

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseAction(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want *Action
	}{
		{"file", string(readTestdata(t, "action.json")), &Action{
			JobID: "job-42", ActionID: "A104-123",
			// The +02:00 offset is kept as the same instant, in UTC.
			StartTime: time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC),
			Actor: Actor{
				UserAgentToken:   "stratus-red-team_5c59eb79-0d7e-4a43-9d0f-8a7c1b2d3e4f",
				Hosts:            []string{"1.2.3.4"},
				AccessKeyIDs:     []string{"AKIAEXAMPLEDEMO00001"},
				Principals:       []string{"arn:aws:iam::123456789012:user/stratus"},
				RoleSessionNames: []string{"stratus-session"},
			},
			ExpectedEvents: []string{"ec2.amazonaws.com:GetPasswordData", "ec2:DescribeInstances", "ConsoleLogin"},
		}},
		{"minimal", `{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:05.250Z","actor":{"userAgentToken":"t"}}`, &Action{
			JobID: "j", ActionID: "a", StartTime: time.Date(2024, 7, 30, 21, 31, 5, 250e6, time.UTC), Actor: Actor{UserAgentToken: "t"},
		}},
		{"null actor, expected events only", `{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:05Z","actor":null,"expectedEvents":["StopLogging"]}`, &Action{
			JobID: "j", ActionID: "a", StartTime: time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC), ExpectedEvents: []string{"StopLogging"},
		}},
		{"design example", `{"jobId": "job-42", "actionId": "A104-123", "startTime": "2024-07-30T21:31:05Z",
 "actor": {"userAgentToken": "stratus-red-team_5c59eb79-...", "hosts": ["1.2.3.4"],
           "accessKeyIds": [], "principals": [], "roleSessionNames": []},
 "expectedEvents": ["ec2.amazonaws.com:GetPasswordData"]}`, &Action{
			JobID: "job-42", ActionID: "A104-123", StartTime: time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC),
			Actor:          Actor{UserAgentToken: "stratus-red-team_5c59eb79-...", Hosts: []string{"1.2.3.4"}},
			ExpectedEvents: []string{"ec2.amazonaws.com:GetPasswordData"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAction([]byte(tt.doc))
			if err != nil {
				t.Fatalf("ParseAction: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("action (-want +got):\n%s", diff)
			}
			if got.StartTime.Location() != time.UTC {
				t.Errorf("startTime in %v, want UTC", got.StartTime.Location())
			}
		})
	}
}

// actionDoc is a valid action with extra members appended.
func actionDoc(extra string) string {
	return `{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:05Z",` + extra + `}`
}

func TestParseActionInvalid(t *testing.T) {
	tests := []struct {
		name, doc, field, phrase string
	}{
		{"not an object", `"job-42"`, "", "expected a JSON object"},
		{"malformed", "{\"jobId\": \"j\",\n \"actionId\" \"a\"}", "", "line 2, column 13"},
		{"unknown field", actionDoc(`"priority":1`), "priority", "unknown field"},
		{"runId outside a run start", actionDoc(`"runId":"run-1"`), "runId", "unknown field"},
		{"misspelt field", `{"jobID":"j","actionId":"a","startTime":"2024-07-30T21:31:05Z"}`, "jobID", `did you mean "jobId"`},
		{"unknown actor field", actionDoc(`"actor":{"ip":"1.2.3.4"}`), "actor.ip", "unknown field"},
		{"duplicate", actionDoc(`"jobId":"k"`), "jobId", "given twice"},
		{"jobId missing", `{"actionId":"a","startTime":"2024-07-30T21:31:05Z"}`, "jobId", "is required"},
		{"jobId blank", `{"jobId":" ","actionId":"a","startTime":"2024-07-30T21:31:05Z"}`, "jobId", "is required"},
		{"jobId number", `{"jobId":42,"actionId":"a","startTime":"2024-07-30T21:31:05Z"}`, "jobId", "must be a string, not a number"},
		{"actionId missing", `{"jobId":"j","startTime":"2024-07-30T21:31:05Z"}`, "actionId", "is required"},
		{"actionId too long", `{"jobId":"j","actionId":"` + strings.Repeat("a", 257) + `","startTime":"2024-07-30T21:31:05Z"}`, "actionId", "at most 256"},
		{"actionId control", `{"jobId":"j","actionId":"a\nb","startTime":"2024-07-30T21:31:05Z"}`, "actionId", "control characters"},
		{"startTime missing", `{"jobId":"j","actionId":"a"}`, "startTime", "is required"},
		{"startTime no zone", `{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:05"}`, "startTime", "not an RFC 3339 time"},
		{"startTime date only", `{"jobId":"j","actionId":"a","startTime":"2024-07-30"}`, "startTime", "not an RFC 3339 time"},
		{"startTime epoch", `{"jobId":"j","actionId":"a","startTime":1722375065}`, "startTime", "must be a string, not a number"},
		{"actor not object", actionDoc(`"actor":["1.2.3.4"]`), "actor", "must be an object"},
		{"hosts string", actionDoc(`"actor":{"hosts":"1.2.3.4"}`), "actor.hosts", "must be a list of strings"},
		{"host empty", actionDoc(`"actor":{"hosts":["1.2.3.4",""]}`), "actor.hosts[1]", "must not be empty"},
		{"host number", actionDoc(`"actor":{"hosts":[1234]}`), "actor.hosts[0]", "must be a string, not a number"},
		{"access key bad", actionDoc(`"actor":{"accessKeyIds":["not-a-key"]}`), "actor.accessKeyIds[0]", "16 to 128 characters of A-Z and 0-9"},
		{"principal blank", actionDoc(`"actor":{"principals":["arn:aws:iam::123456789012:user/u"," "]}`), "actor.principals[1]", "must not be empty"},
		{"user agent blank", actionDoc(`"actor":{"userAgentToken":"   "}`), "actor.userAgentToken", "must not be empty"},
		{"session name short", actionDoc(`"actor":{"roleSessionNames":["x"]}`), "actor.roleSessionNames[0]", "role session name"},
		{"expected empty", actionDoc(`"expectedEvents":[""]`), "expectedEvents[0]", "needs an event name"},
		{"expected no name", actionDoc(`"expectedEvents":["ec2:GetPasswordData","ConsoleLogin","ec2.amazonaws.com:"]`), "expectedEvents[2]", "needs an event name"},
		{"expected no source", actionDoc(`"expectedEvents":[":GetPasswordData"]`), "expectedEvents[0]", "empty source"},
		{"expected space", actionDoc(`"expectedEvents":["Get Password Data"]`), "expectedEvents[0]", "must not contain spaces"},
		{"expected two colons", actionDoc(`"expectedEvents":["a:b:c"]`), "expectedEvents[0]", "more than one ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAction([]byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", a)
			}
			if a != nil {
				t.Errorf("returned an action along with the error")
			}
			checkFieldError(t, err, tt.field, tt.phrase)
		})
	}
}

func TestParseActionFirstProblemInDocumentOrder(t *testing.T) {
	_, err := ParseAction([]byte(`{"expectedEvents":["a b"],"jobId":"","actionId":"a","startTime":"2024-07-30T21:31:05Z"}`))
	checkFieldError(t, err, "expectedEvents[0]", "spaces")
}

func TestLoadActionFile(t *testing.T) {
	tests := []struct{ file, field, phrase string }{
		{"bad-action-unknown.json", "actor.ip", "unknown field; the fields here are userAgentToken, hosts, accessKeyIds, principals, roleSessionNames (line 5, column"},
		{"bad-action-time.json", "startTime", `"30/07/2024 21:31" is not an RFC 3339 time`},
		{"no-such-action.json", "", "cannot read the file"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadActionFile(path)
			checkFieldError(t, err, tt.field, tt.phrase)
			var e *Error
			if errors.As(err, &e) && e.File != path {
				t.Errorf("File %q, want %q", e.File, path)
			}
		})
	}
	a, err := LoadActionFile(filepath.Join("testdata", "action.json"))
	if err != nil || a.JobID != "job-42" {
		t.Fatalf("action.json: %v %+v", err, a)
	}
}

func TestValidateAction(t *testing.T) {
	a := &Action{JobID: "j", ActionID: "a", StartTime: time.Now(), ExpectedEvents: []string{"StopLogging"}}
	if err := ValidateAction(a); err != nil {
		t.Fatalf("valid action refused: %v", err)
	}
	a.Actor.AccessKeyIDs = []string{"AKIAEXAMPLEDEMO00001", "bad"}
	checkFieldError(t, ValidateAction(a), "actor.accessKeyIds[1]", "16 to 128")
	checkFieldError(t, ValidateAction(&Action{JobID: "j", ActionID: "a"}), "startTime", "is required")
	checkFieldError(t, ValidateAction(nil), "", "no action")
	// An action nothing can be matched on is refused, naming actor.
	for _, doc := range []string{
		`{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:05Z"}`,
		`{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:05Z","actor":null,"expectedEvents":[]}`,
		`{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:05Z","actor":{"hosts":[],"accessKeyIds":[]}}`,
	} {
		_, err := ParseAction([]byte(doc))
		checkFieldError(t, err, "actor", "expectedEvents")
	}
}

// TestParseRunStart: a run start is an action with an optional runId, which names the run only
// when it can name a Step Functions execution.
func TestParseRunStart(t *testing.T) {
	for _, tc := range []struct {
		name, doc, runID, errField, phrase string
	}{
		{"with runId", actionDoc(`"runId":"run-1","expectedEvents":["ec2.amazonaws.com:GetPasswordData"]`), "run-1", "", ""},
		{"without runId", actionDoc(`"expectedEvents":["ec2.amazonaws.com:GetPasswordData"]`), "", "", ""},
		{"runId a number", actionDoc(`"runId":7`), "", "runId", "must be a string"},
		{"runId null", actionDoc(`"runId":null`), "", "runId", "1 to 80 characters"},
		{"runId with a space", actionDoc(`"runId":"has space"`), "", "runId", "1 to 80 characters"},
		{"runId too long", actionDoc(`"runId":"` + strings.Repeat("r", 81) + `"`), "", "runId", "1 to 80 characters"},
		{"bad action", `{"runId":"run-1","actionId":"a","startTime":"2024-07-30T21:31:05Z"}`, "", "jobId", "is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runID, a, err := ParseRunStart([]byte(tc.doc))
			if tc.errField == "" {
				if err != nil || a == nil || runID != tc.runID {
					t.Fatalf("ParseRunStart = %q, %v, %v; want run ID %q", runID, a, err, tc.runID)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Field != tc.errField || !strings.Contains(err.Error(), tc.phrase) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, tc.errField, tc.phrase)
			}
		})
	}
}
