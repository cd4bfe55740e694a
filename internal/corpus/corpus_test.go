package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"github.com/trailproof/trailproof/internal/testenv"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// sharedData finds ../shared/data/cloudtrail beside the repository, walking up from the package.
func sharedData(t testing.TB, sub string) string {
	t.Helper()
	return testenv.SharedData(t, sub)
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// summary is what a user checks of a loaded event: its id, time, category and envelope.
type summary struct {
	EventID   string
	EventTime time.Time
	Category  string
	Region    string
	Env       Envelope
}

func summarize(t *testing.T, evs []core.RawEvent) map[string]summary {
	t.Helper()
	out := map[string]summary{}
	for _, ev := range evs {
		if !json.Valid(ev.Record) {
			t.Errorf("event %s: record is not valid JSON", ev.EventID)
		}
		var compacted bytes.Buffer
		_ = json.Compact(&compacted, ev.Record)
		if !bytes.Equal(compacted.Bytes(), ev.Record) {
			t.Errorf("event %s: record is not compact", ev.EventID)
		}
		env, err := EnvelopeOf(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[ev.EventID] = summary{ev.EventID, ev.EventTime, ev.Category, ev.Region, env}
	}
	return out
}

func TestLoadFolderAllFormats(t *testing.T) {
	evs, rep, err := LoadWithOptions(Options{}, "testdata/ok")
	if err != nil {
		t.Fatal(err)
	}
	alice := func(id, name, source, at, ro string, res ...Resource) Envelope {
		if res == nil {
			res = []Resource{}
		}
		return Envelope{EventID: id, EventName: name, EventSource: source, EventTime: mustTime(at),
			Username: "alice", AccessKeyID: "AKIAEXAMPLE000000001", ReadOnly: ro, Resources: res}
	}
	id := func(n string) string { return "00000000-0000-4000-8000-0000000000" + n }
	sum := func(n, at, category string, env Envelope) summary {
		return summary{EventID: env.EventID, EventTime: mustTime(at), Category: category, Region: "us-east-1", Env: env}
	}
	hashed := HashID([]byte(`{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE5","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAEXAMPLE000000001","userName":"alice"},"eventSource":"ec2.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.0","requestParameters":null,"responseElements":null,"requestID":"req-5","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","@timestamp":"2020-09-14T00:44:23.000Z"}`))
	want := map[string]summary{}
	for _, s := range []summary{
		// array.json: a pretty JSON array
		sum("01", "2024-07-30T21:31:05Z", "", alice(id("01"), "DescribeInstances", "ec2.amazonaws.com", "2024-07-30T21:31:05Z", "true")),
		sum("02", "2024-07-30T21:31:10Z", "", alice(id("02"), "GetPasswordData", "ec2.amazonaws.com", "2024-07-30T21:31:10Z", "true",
			Resource{"AWS::EC2::Instance", "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"})),
		// trail.json.gz: {"Records": [...]} gzipped, an assumed role: Username is the session name
		sum("03", "2024-07-30T21:32:00Z", "", Envelope{EventID: id("03"), EventName: "StopInstances", EventSource: "ec2.amazonaws.com",
			EventTime: mustTime("2024-07-30T21:32:00Z"), Username: "session-x", AccessKeyID: "ASIAEXAMPLE000000002", ReadOnly: "false", Resources: []Resource{}}),
		// nested/ListBuckets.json.cloudtrail: a single object
		sum("04", "2024-07-30T21:33:00Z", "", alice(id("04"), "ListBuckets", "s3.amazonaws.com", "2024-07-30T21:33:00Z", "true")),
		// nested/lines.jsonl: @timestamp and no eventID (hashed); the root user
		sum("05", "2020-09-14T00:44:23Z", "", alice(hashed, "GetObject", "ec2.amazonaws.com", "2020-09-14T00:44:23Z", "true")),
		sum("06", "2024-07-30T21:34:00Z", "", Envelope{EventID: id("06"), EventName: "ConsoleLogin", EventSource: "ec2.amazonaws.com",
			EventTime: mustTime("2024-07-30T21:34:00Z"), Username: "root", ReadOnly: "true", Resources: []Resource{}}),
		// nested/lookup.ndjson: gzip under another name, LookupEvents-shaped, epoch and offset times
		sum("07", "2022-02-07T22:19:05Z", "", alice(id("07"), "RunInstances", "ec2.amazonaws.com", "2022-02-07T22:19:05Z", "false",
			Resource{"AWS::EC2::Instance", "i-0123456789abcdef0"})),
		sum("08", "2022-02-07T22:23:18Z", "", alice(id("08"), "TerminateInstances", "ec2.amazonaws.com", "2022-02-07T22:23:18Z", "false")),
		// nested/lookup-response.json: {"Events": [...]}; the envelope's ReadOnly wins over the record's
		sum("09", "2024-07-30T21:35:00Z", "", alice(id("09"), "PutObject", "s3.amazonaws.com", "2024-07-30T21:35:00Z", "false")),
		// insight.json
		sum("10", "2024-07-30T21:40:00Z", core.CategoryInsight, Envelope{EventID: id("10"), EventTime: mustTime("2024-07-30T21:40:00Z"), Resources: []Resource{}}),
		// nested/wrapped.jsonl: under "log"
		sum("11", "2024-07-30T21:36:00Z", "", alice(id("11"), "DeleteTrail", "cloudtrail.amazonaws.com", "2024-07-30T21:36:00Z", "true")),
	} {
		want[s.EventID] = s
	}
	if diff := cmp.Diff(want, summarize(t, evs)); diff != "" {
		t.Errorf("loaded events (-want +got):\n%s", diff)
	}
	if rep.Duplicates != 1 || rep.Conflicts != 0 {
		t.Errorf("duplicates = %d, conflicts = %d; want 1 (nested/dup.json repeats array.json), 0", rep.Duplicates, rep.Conflicts)
	}
	if diff := cmp.Diff([]string{filepath.Join("testdata", "ok", "nested", "index.json")}, rep.SkippedFiles); diff != "" {
		t.Errorf("skipped files (-want +got):\n%s", diff)
	}
	if rep.Files != 10 {
		t.Errorf("files read = %d, want 10 (README.md and notes.yaml are not read)", rep.Files)
	}
}

// The same record must load the same whatever container it comes in.
func TestFormatsAgree(t *testing.T) {
	rec := `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":"bob","accessKeyId":"AKIAB"},"eventTime":"2024-01-02T03:04:05Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","eventID":"e-1","readOnly":false}`
	pretty, _ := json.MarshalIndent(json.RawMessage(rec), "", "  ")
	lookup, _ := json.Marshal(map[string]any{"EventId": "e-1", "EventName": "CreateUser", "EventSource": "iam.amazonaws.com",
		"EventTime": 1704164645, "Username": "bob", "AccessKeyId": "AKIAB", "ReadOnly": "false", "Resources": []any{}, "CloudTrailEvent": rec})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("[" + rec + "]"))
	zw.Close()
	inputs := map[string]string{
		"array":          "[" + rec + "]",
		"records":        `{"Records":[` + rec + `]}`,
		"single":         string(pretty),
		"lines":          "\n" + rec + "\n\n",
		"gzip":           gz.String(),
		"lookup-events":  string(lookup) + "\n",
		"lookup-resp":    `{"Events":[` + string(lookup) + `]}`,
		"log-wrapper":    `{"rule_id":"x","log":` + rec + `}`,
		"bom-and-spaces": "\xef\xbb\xbf  [" + rec + "]  \n",
	}
	var first []core.RawEvent
	for _, name := range []string{"array", "records", "single", "lines", "gzip", "lookup-events", "lookup-resp", "log-wrapper", "bom-and-spaces"} {
		evs, err := Parse(name, []byte(inputs[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if first == nil {
			first = evs
			continue
		}
		if diff := cmp.Diff(first, evs); diff != "" {
			t.Errorf("%s differs from array (-array +%s):\n%s", name, name, diff)
		}
	}
	if len(first) != 1 || first[0].EventTime != mustTime("2024-01-02T03:04:05Z") {
		t.Errorf("got %+v, want one event at 2024-01-02T03:04:05Z", first)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want string // in the message, after the file name
	}{
		{"broken_line.jsonl", "line 3, column 59: unexpected end of JSON"},
		{"syntax.json", "line 15, column 5 (byte 390): invalid character '\"' after object key:value pair"},
		{"bad_time.json", `line 28, column 3 (byte 798): record 2: eventTime: not a time: "yesterday"`},
		{"missing_time.jsonl", "line 2: record 2: eventTime: missing (and no @timestamp)"},
		{"bad_cloudtrailevent.jsonl", "line 1, column 1: record 1: CloudTrailEvent: does not hold a JSON object"},
		{"bad_eventtime.jsonl", `line 1, column 1: record 1: EventTime: not a time: "next tuesday"`},
		{"bad_id.json", "line 1, column 2 (byte 1): record 1: eventID: not a non-empty string: 12345"},
		{"not_records.json", "line 1, column 2 (byte 1): no CloudTrail records"},
		{"bad.gz", "not valid gzip"},
		{"text.json", "line 1, column 1 (byte 0): not JSON"},
		{"no-such-file.json", "cannot read corpus: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			_, err := Load(path)
			var ce *core.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load(%s) = %v, want a *core.Error", path, err)
			}
			if ce.Code != core.EINVALID || ce.File != path {
				t.Errorf("code %q file %q, want %q %q", ce.Code, ce.File, core.EINVALID, path)
			}
			if !strings.Contains(ce.Message, tt.want) {
				t.Errorf("message %q\n does not contain %q", ce.Message, tt.want)
			}
			if !strings.HasPrefix(core.ErrorMessage(err), path+": ") {
				t.Errorf("user-facing message %q does not start with the file", core.ErrorMessage(err))
			}
		})
	}
}

func TestSkipInvalid(t *testing.T) {
	evs, rep, err := LoadWithOptions(Options{SkipInvalid: true}, "testdata/bad/missing_time.jsonl", "testdata/bad/bad_time.json")
	if err != nil {
		t.Fatal(err)
	}
	// Both files' first record is the same event: one is kept.
	if len(evs) != 1 || len(rep.Invalid) != 2 || rep.Duplicates != 1 {
		t.Fatalf("got %d events, %d invalid, %d duplicates; want 1, 2, 1", len(evs), len(rep.Invalid), rep.Duplicates)
	}
	if _, _, err := LoadWithOptions(Options{SkipInvalid: true}, "testdata/bad/syntax.json"); err == nil {
		t.Error("SkipInvalid must not hide a syntax error")
	}
}

func TestNoPaths(t *testing.T) {
	if _, err := Load(); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("Load() = %v, want an EINVALID error", err)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"2024-07-30T21:31:05Z", "2024-07-30T21:31:05Z"},
		{"2020-09-14T00:44:23.000Z", "2020-09-14T00:44:23Z"},
		{"2022-02-08 09:23:37+11:00", "2022-02-07T22:23:37Z"},
		{"2022-02-08T09:23:37+1100", "2022-02-07T22:23:37Z"},
		{"2022-02-08 09:23:37", "2022-02-08T09:23:37Z"},
		{"1644272345", "2022-02-07T22:19:05Z"},
		{"1644272345.5", "2022-02-07T22:19:05.5Z"},
		{"1644272345500", "2022-02-07T22:19:05.5Z"}, // milliseconds
		{"yesterday", "error"},
		{"", "error"},
		{"-5", "error"},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in)
		if tt.want == "error" {
			if err == nil {
				t.Errorf("ParseTime(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(mustTime(tt.want)) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %s in UTC", tt.in, got, err, tt.want)
		}
	}
}

func TestEnvelopeFromRecord(t *testing.T) {
	at := mustTime("2024-07-30T21:31:05Z")
	tests := []struct {
		name   string
		record string
		want   Envelope
	}{
		{"assumed role: session name", `{"eventName":"GetPasswordData","eventSource":"ec2.amazonaws.com","readOnly":true,
			"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/stratus-role/aws-go-sdk-1722375065","accessKeyId":"ASIA1"}}`,
			Envelope{EventID: "x", EventName: "GetPasswordData", EventSource: "ec2.amazonaws.com", EventTime: at,
				Username: "aws-go-sdk-1722375065", AccessKeyID: "ASIA1", ReadOnly: "true", Resources: []Resource{}}},
		{"user name wins", `{"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/path/carol","userName":"carol"},"readOnly":false}`,
			Envelope{EventID: "x", EventTime: at, Username: "carol", ReadOnly: "false", Resources: []Resource{}}},
		{"root", `{"userIdentity":{"type":"Root","arn":"arn:aws:iam::1:root"}}`,
			Envelope{EventID: "x", EventTime: at, Username: "root", Resources: []Resource{}}},
		{"service, no readOnly, resources", `{"userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"},
			"resources":[{"ARN":"arn:aws:s3:::b","type":"AWS::S3::Bucket","accountId":"1"},{"ARN":"arn:aws:kms:r:1:key/k","type":"AWS::KMS::Key"}]}`,
			Envelope{EventID: "x", EventTime: at, Resources: []Resource{{"AWS::S3::Bucket", "arn:aws:s3:::b"}, {"AWS::KMS::Key", "arn:aws:kms:r:1:key/k"}}}},
		{"readOnly as a string", `{"readOnly":"true"}`, Envelope{EventID: "x", EventTime: at, ReadOnly: "true", Resources: []Resource{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EnvelopeFromRecord([]byte(tt.record), "x", at)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// What the emulator reads back from a RawEvent must be the same envelope.
			back, err := EnvelopeOf(core.RawEvent{EventID: "x", EventTime: at, Envelope: MarshalEnvelope(got)})
			if err != nil || !cmp.Equal(got, back) {
				t.Errorf("EnvelopeOf(MarshalEnvelope(env)) = %+v, %v", back, err)
			}
		})
	}
}

func TestHashIDStable(t *testing.T) {
	a, _ := Parse("a", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"A"}`))
	b, _ := Parse("b", []byte(`{"eventTime": "2024-01-01T00:00:00Z", "eventName": "A"}`)) // same record, other spacing
	c, _ := Parse("c", []byte(`{"eventTime":"2024-01-01T00:00:00Z","eventName":"B"}`))
	if a[0].EventID != b[0].EventID {
		t.Errorf("same record, different ids: %s %s", a[0].EventID, b[0].EventID)
	}
	if a[0].EventID == c[0].EventID {
		t.Errorf("different records share id %s", a[0].EventID)
	}
}

// Every dataset folder of the shared real records loads, with the counts its README gives.
func TestSharedData(t *testing.T) {
	tests := []struct {
		folder     string
		opts       Options
		events     int
		records    int
		from, to   string // event time range
		lookupLike bool
	}{
		{folder: "stratus-red-team/docs/detonation-logs", events: 310, records: 310},
		{folder: "stratus-red-team", events: 310, records: 310}, // ground-truth JSON beside the logs is skipped
		// 563 records, of which 249 are the same record published under two names.
		{folder: "traildiscover/docs/logExamples", events: 314, records: 563},
		{folder: "otrf-security-datasets", events: 103, records: 103, from: "2020-09-14T00:44:00Z", to: "2020-09-14T01:14:00Z"},
		{folder: "plaso", events: 6, records: 6, from: "2022-02-07T22:00:00Z", to: "2022-02-07T23:00:00Z", lookupLike: true},
		// Hand-edited detection tests: 25 records have no eventTime and many share eventIDs.
		{folder: "panther-analysis", opts: Options{SkipInvalid: true}, events: 157, records: 436},
	}
	for _, tt := range tests {
		t.Run(tt.folder, func(t *testing.T) {
			evs, rep, err := LoadWithOptions(tt.opts, sharedData(t, tt.folder))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != tt.events || rep.Records != tt.records {
				t.Errorf("%d events from %d records, want %d from %d", len(evs), rep.Records, tt.events, tt.records)
			}
			for _, ev := range evs {
				if ev.EventID == "" || ev.EventTime.IsZero() || ev.EventTime.Location() != time.UTC || !json.Valid(ev.Record) || !json.Valid(ev.Envelope) {
					t.Fatalf("incomplete event %+v", ev)
				}
				if tt.from != "" && (ev.EventTime.Before(mustTime(tt.from)) || ev.EventTime.After(mustTime(tt.to))) {
					t.Errorf("event %s at %s, outside [%s, %s]", ev.EventID, ev.EventTime, tt.from, tt.to)
				}
			}
		})
	}
}

func TestPlasoEnvelope(t *testing.T) {
	evs, err := Load(sharedData(t, "plaso"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].EventTime.After(evs[j].EventTime) })
	env, _ := EnvelopeOf(evs[0])
	want := Envelope{EventID: "0828c0d2-3589-4390-b954-c78b4a7df44b", EventName: "DescribeInstances", EventSource: "ec2.amazonaws.com",
		EventTime: mustTime("2022-02-07T22:23:37Z"), Username: "fakeusername", AccessKeyID: "0123456789ABCDEFGHIJ", ReadOnly: "true", Resources: []Resource{}}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("newest plaso envelope (-want +got):\n%s", diff)
	}
}

func TestPantherStrict(t *testing.T) {
	dir := sharedData(t, "panther-analysis")
	_, err := Load(dir)
	var ce *core.Error
	if !errors.As(err, &ce) || !strings.HasSuffix(ce.File, "panther_cloudtrail_rule_tests.jsonl") ||
		!strings.Contains(ce.Message, "line 32: record 32: eventTime: missing") {
		t.Errorf("Load(panther) = %v, want the first record without eventTime (line 32) named", err)
	}
}

func BenchmarkLoadStratus(b *testing.B) {
	dir := sharedData(b, "stratus-red-team/docs/detonation-logs")
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
