package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Demo credentials used across the tests; a test fails if any of them shows up where it must not.
const (
	demoSecret   = "demo-secret-not-real"
	demoToken    = "demo-session-token-not-real"
	demoExternal = "demo-external-id"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// defaultsWith is the resolved integration a document with no optional settings yields.
func defaultsWith(typ, name, region string) *Integration {
	return &Integration{
		Type: typ, Name: name, AWSRegion: region,
		Timeout: 30, VerifySSL: true, PageSize: 100, MaxPage: 5,
		FieldMap:  ResolveFieldMap(nil),
		QueryTime: 5, DelayTime: 0, QueryInterval: 30, CorrelationQueryInterval: 5,
		DiscoverNetworkDevices: true, Limit: 10000, SettleTime: 10,
	}
}

func TestParseIntegrationResolves(t *testing.T) {
	fullFieldMap := ResolveFieldMap(nil)
	fullFieldMap["hosts"] = []string{"sourceIPAddress", "requestParameters.host"}
	fullFieldMap["user"] = []string{"userIdentity.userName", "Username"}

	legacy := defaultsWith(TypeLegacy, "CloudTrail (classic)", "ap-south-1")
	legacy.AccessKeyID = "AKIAEXAMPLEDEMO00001"
	legacy.SecretAccessKey = demoSecret
	legacy.QueryTime, legacy.DelayTime, legacy.QueryInterval = 15, 5, 120
	legacy.DiscoverNetworkDevices, legacy.EventTimeAdjustment, legacy.SaveSuspiciousEvents = false, 30, true

	tests := []struct {
		file string
		want *Integration
	}{
		{"msi-minimal.json", defaultsWith(TypeMSI, "CloudTrail us-east-1", "us-east-1")},
		{"legacy.json", legacy},
		{"msi-full.json", &Integration{
			ID: "ct-prod-1", Type: TypeMSI, Name: "CloudTrail production", AWSRegion: "eu-west-1",
			AccessKeyID: "AKIAEXAMPLEDEMO00001", SecretAccessKey: demoSecret, SessionToken: demoToken,
			RoleARN: "arn:aws:iam::123456789012:role/trailproof-reader", ExternalID: demoExternal,
			Endpoint: "http://127.0.0.1:4599", Proxy: "http://proxy.example.internal:3128",
			Timeout: 45, VerifySSL: false, PageSize: 50, MaxPage: 10,
			// Sensor UUIDs come back in canonical lower case.
			EventSensorUUIDs: []string{"6f1c2b4e-8a3d-4c5e-9f70-1a2b3c4d5e6f"},
			AlarmSensorUUIDs: []string{"0b8d6a1e-2f3c-4d5e-8a9b-0c1d2e3f4a5b"},
			FieldMap:         fullFieldMap,
			QueryTime:        10, DelayTime: 2, QueryInterval: 60,
			CorrelationQueryEnabled:  true,
			CorrelationQuery:         `record.eventName in ["StopLogging", "DeleteTrail"] && !has(record.errorCode)`,
			CorrelationQueryInterval: 3, DiscoverNetworkDevices: false, SaveSuspiciousEvents: true,
			EventTimeAdjustment: -120, Limit: 500, SettleTime: 15,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseIntegration(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("ParseIntegration: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("resolved integration (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIntegrationFalseAndNullKeepMeaning(t *testing.T) {
	// verifySsl and discoverNetworkDevices default to true: an explicit false must stick, and a
	// null must read as "not given" rather than as false.
	in, err := ParseIntegration([]byte(`{"name":"n","awsRegion":"us-east-1","verifySsl":false,"discoverNetworkDevices":null,"timeout":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if in.VerifySSL || !in.DiscoverNetworkDevices || in.Timeout != DefaultTimeout {
		t.Errorf("verifySsl=%v discoverNetworkDevices=%v timeout=%d, want false true %d",
			in.VerifySSL, in.DiscoverNetworkDevices, in.Timeout, DefaultTimeout)
	}
}

func TestParseIntegrationByteOrderMark(t *testing.T) {
	// Editors on Windows save JSON with a BOM; it is not part of the settings.
	in, err := ParseIntegration(append([]byte{0xEF, 0xBB, 0xBF}, readTestdata(t, "msi-minimal.json")...))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaultsWith(TypeMSI, "CloudTrail us-east-1", "us-east-1"), in); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseIntegrationRegionAlias(t *testing.T) {
	for _, doc := range []string{
		`{"name":"n","awsRegion":"ap-south1"}`,
		`{"name":"n","awsRegion":"ap-south-1"}`,
		`{"type":"legacy","name":"n","amazonRegion":"ap-south1"}`,
	} {
		in, err := ParseIntegration([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if in.AWSRegion != "ap-south-1" {
			t.Errorf("%s: region %q, want ap-south-1", doc, in.AWSRegion)
		}
	}
}

func TestParseIntegrationCredentialCombinations(t *testing.T) {
	tests := []struct{ name, creds string }{
		{"default chain", ``},
		{"keys", `,"accessKeyId":"AKIAEXAMPLEDEMO00001","secretAccessKey":"x"`},
		{"temporary keys", `,"accessKeyId":"ASIAEXAMPLEDEMO00001","secretAccessKey":"x","sessionToken":"t"`},
		{"role", `,"roleArn":"arn:aws:iam::123456789012:role/r"`},
		{"role with external id", `,"roleArn":"arn:aws-us-gov:iam::123456789012:role/path/r","externalId":"ext-1"`},
		{"keys assume role", `,"accessKeyId":"AKIAEXAMPLEDEMO00001","secretAccessKey":"x","roleArn":"arn:aws:iam::123456789012:role/r"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseIntegration([]byte(`{"name":"n","awsRegion":"us-east-1"` + tt.creds + `}`)); err != nil {
				t.Errorf("want accepted, got %v", err)
			}
		})
	}
}

// msiDoc is a valid MSI document with extra members appended.
func msiDoc(extra string) string {
	if extra == "" {
		return `{"name":"n","awsRegion":"us-east-1"}`
	}
	return `{"name":"n","awsRegion":"us-east-1",` + extra + `}`
}

func TestParseIntegrationInvalid(t *testing.T) {
	tests := []struct {
		name, doc, field, phrase string
	}{
		// form
		{"not an object", `["name"]`, "", "expected a JSON object"},
		{"empty", "  \n", "", "empty document"},
		{"null", "null", "", "expected a JSON object"},
		{"bad type", `{"type":"MSI","name":"n","awsRegion":"us-east-1"}`, "type", `must be "msi" or "legacy"`},
		{"unknown field", msiDoc(`"colour":"blue"`), "colour", "unknown field"},
		{"misspelt field", msiDoc(`"verifySSL":true`), "verifySSL", `did you mean "verifySsl"`},
		{"duplicate field", msiDoc(`"name":"m"`), "name", "given twice"},
		{"legacy with MSI field", `{"type":"legacy","name":"n","amazonRegion":"us-east-1","pageSize":50}`, "pageSize", "not allowed in a legacy integration"},
		{"legacy with roleArn", `{"type":"legacy","name":"n","amazonRegion":"us-east-1","roleArn":"arn:aws:iam::123456789012:role/r"}`, "roleArn", "not allowed in a legacy integration"},
		{"legacy with awsRegion", `{"type":"legacy","name":"n","awsRegion":"us-east-1"}`, "awsRegion", "amazonRegion"},
		{"msi with amazonRegion", `{"name":"n","amazonRegion":"us-east-1"}`, "amazonRegion", "awsRegion"},
		// wrong types
		{"string for number", msiDoc(`"timeout":"30"`), "timeout", "must be a whole number, not a string"},
		{"fraction", msiDoc(`"pageSize":10.5`), "pageSize", "whole number"},
		{"number for bool", msiDoc(`"verifySsl":1`), "verifySsl", "must be true or false, not a number"},
		{"string for list", msiDoc(`"eventSensorUuids":"6f1c2b4e-8a3d-4c5e-9f70-1a2b3c4d5e6f"`), "eventSensorUuids", "must be a list of strings, not a string"},
		{"number in list", msiDoc(`"alarmSensorUuids":["6f1c2b4e-8a3d-4c5e-9f70-1a2b3c4d5e6f", 7]`), "alarmSensorUuids[1]", "must be a string, not a number"},
		{"list for name", `{"name":["n"],"awsRegion":"us-east-1"}`, "name", "must be a string, not a list"},
		{"fieldMap not object", msiDoc(`"fieldMap":["hosts"]`), "fieldMap", "must be an object"},
		{"fieldMap value not list", msiDoc(`"fieldMap":{"hosts":"sourceIPAddress"}`), "fieldMap.hosts", "list of strings"},
		// region
		{"region missing", `{"name":"n"}`, "awsRegion", "is required"},
		{"region unknown", `{"name":"n","awsRegion":"eu-north-1"}`, "awsRegion", "us-gov-west-1"},
		{"region case", `{"name":"n","awsRegion":"US-EAST-1"}`, "awsRegion", "not a supported region"},
		{"legacy region missing", `{"type":"legacy","name":"n"}`, "amazonRegion", "is required"},
		// name
		{"name missing", `{"awsRegion":"us-east-1"}`, "name", "is required"},
		{"name blank", `{"name":"  ","awsRegion":"us-east-1"}`, "name", "is required"},
		{"name too long", `{"name":"` + strings.Repeat("x", 257) + `","awsRegion":"us-east-1"}`, "name", "at most 256"},
		{"name control", `{"name":"a\u0007b","awsRegion":"us-east-1"}`, "name", "control characters"},
		// credentials
		{"key without secret", msiDoc(`"accessKeyId":"AKIAEXAMPLEDEMO00001"`), "secretAccessKey", "required with accessKeyId"},
		{"secret without key", msiDoc(`"secretAccessKey":"` + demoSecret + `"`), "accessKeyId", "required with secretAccessKey"},
		{"token without keys", msiDoc(`"sessionToken":"` + demoToken + `"`), "sessionToken", "only allowed with accessKeyId"},
		{"key id lower case", msiDoc(`"accessKeyId":"akiaexampledemo00001","secretAccessKey":"s"`), "accessKeyId", "16 to 128 characters of A-Z and 0-9"},
		{"key id short", msiDoc(`"accessKeyId":"AKIA1234","secretAccessKey":"s"`), "accessKeyId", "16 to 128"},
		{"secret padded", msiDoc(`"accessKeyId":"AKIAEXAMPLEDEMO00001","secretAccessKey":" s "`), "secretAccessKey", "white space"},
		{"role arn not iam", msiDoc(`"roleArn":"arn:aws:s3:::bucket"`), "roleArn", "must be an IAM role ARN"},
		{"role arn short account", msiDoc(`"roleArn":"arn:aws:iam::1234:role/r"`), "roleArn", "12-digit account"},
		{"role arn user", msiDoc(`"roleArn":"arn:aws:iam::123456789012:user/u"`), "roleArn", "must be an IAM role ARN"},
		{"external id without role", msiDoc(`"externalId":"` + demoExternal + `"`), "externalId", "only allowed with roleArn"},
		{"external id bad chars", msiDoc(`"roleArn":"arn:aws:iam::123456789012:role/r","externalId":"a b"`), "externalId", "2 to 1224 characters"},
		// URLs
		{"endpoint relative", msiDoc(`"endpoint":"localhost:4599"`), "endpoint", "absolute http:// or https:// URL"},
		{"endpoint no host", msiDoc(`"endpoint":"http://"`), "endpoint", "absolute http"},
		{"proxy ftp", msiDoc(`"proxy":"ftp://proxy:21"`), "proxy", "absolute http:// or https:// URL"},
		{"proxy with password", msiDoc(`"proxy":"http://user:` + demoSecret + `@proxy:3128"`), "proxy", "must not carry credentials"},
		// numbers
		{"timeout zero", msiDoc(`"timeout":0`), "timeout", "at least 1"},
		{"timeout negative", msiDoc(`"timeout":-5`), "timeout", "must not be negative"},
		{"timeout high", msiDoc(`"timeout":301`), "timeout", "at most 300"},
		{"pageSize zero", msiDoc(`"pageSize":0`), "pageSize", "at least 1"},
		{"pageSize high", msiDoc(`"pageSize":1001`), "pageSize", "at most 1000"},
		{"maxPage zero", msiDoc(`"maxPage":0`), "maxPage", "at least 1"},
		{"maxPage high", msiDoc(`"maxPage":101`), "maxPage", "at most 100"},
		{"queryTime zero", msiDoc(`"queryTime":0`), "queryTime", "at least 1"},
		{"queryTime high", msiDoc(`"queryTime":1441`), "queryTime", "at most 1440"},
		{"delayTime negative", msiDoc(`"delayTime":-1`), "delayTime", "must not be negative"},
		{"delayTime high", msiDoc(`"delayTime":1441`), "delayTime", "at most 1440"},
		{"queryInterval low", msiDoc(`"queryInterval":4`), "queryInterval", "at least 5"},
		{"queryInterval negative", msiDoc(`"queryInterval":-30`), "queryInterval", "must not be negative"},
		{"queryInterval high", msiDoc(`"queryInterval":3601`), "queryInterval", "at most 3600"},
		{"correlationQueryInterval zero", msiDoc(`"correlationQueryInterval":0`), "correlationQueryInterval", "at least 1"},
		{"correlationQueryInterval high", msiDoc(`"correlationQueryInterval":1441`), "correlationQueryInterval", "at most 1440"},
		{"eventTimeAdjustment low", msiDoc(`"eventTimeAdjustment":-86401`), "eventTimeAdjustment", "at least -86400"},
		{"eventTimeAdjustment high", msiDoc(`"eventTimeAdjustment":86401`), "eventTimeAdjustment", "at most 86400"},
		{"limit zero", msiDoc(`"limit":0`), "limit", "at least 1"},
		{"limit high", msiDoc(`"limit":100001`), "limit", "at most 100000"},
		{"limit huge", msiDoc(`"limit":1e30`), "limit", "at most 100000"},
		{"settleTime negative", msiDoc(`"settleTime":-1`), "settleTime", "must not be negative"},
		{"settleTime high", msiDoc(`"settleTime":1441`), "settleTime", "at most 1440"},
		{"legacy queryTime negative", `{"type":"legacy","name":"n","amazonRegion":"us-east-1","queryTime":-5}`, "queryTime", "must not be negative"},
		// sensors
		{"event sensor not uuid", msiDoc(`"eventSensorUuids":["6f1c2b4e-8a3d-4c5e-9f70-1a2b3c4d5e6f","6f1c2b4e-8a3d-4c5e-9f70-1a2b3c4d5e6f","sensor-3"]`), "eventSensorUuids[2]", "must be a UUID"},
		{"alarm sensor empty", msiDoc(`"alarmSensorUuids":[""]`), "alarmSensorUuids[0]", "must be a UUID"},
		// field map
		{"fieldMap unknown target", msiDoc(`"fieldMap":{"hostname":["sourceIPAddress"]}`), "fieldMap.hostname", "unknown field-map target"},
		{"fieldMap empty list", msiDoc(`"fieldMap":{"hosts":[]}`), "fieldMap.hosts", "at least one path"},
		{"fieldMap empty segment", msiDoc(`"fieldMap":{"user":["userIdentity.arn","userIdentity..userName"]}`), "fieldMap.user[1]", "bad path syntax"},
		{"fieldMap trailing dot", msiDoc(`"fieldMap":{"src_ip":["sourceIPAddress."]}`), "fieldMap.src_ip[0]", "bad path syntax"},
		{"fieldMap space", msiDoc(`"fieldMap":{"user":["user Identity"]}`), "fieldMap.user[0]", "bad path syntax"},
		{"fieldMap empty path", msiDoc(`"fieldMap":{"user":[""]}`), "fieldMap.user[0]", "bad path syntax"},
		{"fieldMap long path", msiDoc(`"fieldMap":{"user":["` + strings.Repeat("a.", 128) + `b"]}`), "fieldMap.user[0]", "at most 256 characters"},
		{"fieldMap duplicate target", msiDoc(`"fieldMap":{"user":["a"],"user":["b"]}`), "fieldMap.user", "given twice"},
		// correlation query
		{"correlation query missing", msiDoc(`"correlationQueryEnabled":true`), "correlationQuery", "required when correlationQueryEnabled"},
		{"correlation query blank", msiDoc(`"correlationQueryEnabled":true,"correlationQuery":"  "`), "correlationQuery", "required when correlationQueryEnabled"},
		// id
		{"id with slash", msiDoc(`"id":"a/b"`), "id", "letters, digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseIntegration([]byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", in)
			}
			if in != nil {
				t.Errorf("returned an integration along with the error")
			}
			checkFieldError(t, err, tt.field, tt.phrase)
		})
	}
}

// checkFieldError asserts the shape every bad-input error must have.
func checkFieldError(t *testing.T, err error, field, phrase string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *core.Error", err, err)
	}
	if e.Code != EINVALID {
		t.Errorf("code %q, want %q (error: %v)", e.Code, EINVALID, err)
	}
	if e.Field != field {
		t.Errorf("field %q, want %q (error: %v)", e.Field, field, err)
	}
	if !strings.Contains(e.Message, phrase) {
		t.Errorf("message %q does not contain %q", e.Message, phrase)
	}
}

func TestParseIntegrationPrefersFirstFieldInDocument(t *testing.T) {
	// Both timeout and limit are wrong; the document gives limit first.
	_, err := ParseIntegration([]byte(`{"limit":0,"name":"n","awsRegion":"us-east-1","timeout":0}`))
	checkFieldError(t, err, "limit", "at least 1")
	// A missing field is reported after the problems of the fields that are there.
	_, err = ParseIntegration([]byte(`{"awsRegion":"us-east-1","timeout":0}`))
	checkFieldError(t, err, "timeout", "at least 1")
}

func TestParseIntegrationSyntaxPosition(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		pos  string
	}{
		{"missing comma (file)", string(readTestdata(t, "bad-syntax.json")), "line 5, column 3"},
		{"trailing comma", "{\n  \"name\": \"n\",\n}", "line 3, column 1"},
		{"bare word", `{"name": xope}`, "line 1, column 10"},
		{"bad literal", `{"name": nope}`, "line 1, column 11"},
		{"after multibyte", "{\"name\": \"é\" x}", "line 1, column 14"},
		{"truncated", "{\n\"name\": \"n\"", "line 2, column 12"},
		{"trailing data", `{"name":"n"} {}`, "line 1, column 14"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIntegration([]byte(tt.doc))
			checkFieldError(t, err, "", "malformed JSON")
			if !strings.Contains(err.Error(), tt.pos) {
				t.Errorf("error %q does not say %q", err, tt.pos)
			}
		})
	}
}

func TestParseIntegrationTypeErrorPosition(t *testing.T) {
	_, err := ParseIntegration(readTestdata(t, "bad-type.json"))
	checkFieldError(t, err, "timeout", "line 4, column 14")
}

func TestLoadIntegrationFile(t *testing.T) {
	tests := []struct {
		file, field, phrase string
	}{
		{"bad-legacy-msi-field.json", "pageSize", "not allowed in a legacy integration"},
		{"bad-region.json", "awsRegion", `"eu-north-1" is not a supported region`},
		{"bad-fieldmap.json", "fieldMap.user[1]", "bad path syntax"},
		{"bad-syntax.json", "", "line 5, column 3"},
		{"no-such-file.json", "", "cannot read the file"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadIntegrationFile(path)
			checkFieldError(t, err, tt.field, tt.phrase)
			var e *Error
			if errors.As(err, &e) && e.File != path {
				t.Errorf("File %q, want %q", e.File, path)
			}
			if !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("error %q does not start with the file name", err)
			}
		})
	}
	in, err := LoadIntegrationFile(filepath.Join("testdata", "legacy.json"))
	if err != nil || in.Type != TypeLegacy {
		t.Fatalf("legacy.json: %v, %+v", err, in)
	}
}

func TestExamplesParse(t *testing.T) {
	for _, f := range []string{"integration-msi.json", "integration-legacy.json"} {
		in, err := LoadIntegrationFile(filepath.Join("..", "..", "examples", f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if in.Endpoint != "" {
			t.Errorf("%s: example sets endpoint %q; examples must point at real CloudTrail", f, in.Endpoint)
		}
		if in.SecretAccessKey.Reveal() != demoSecret {
			t.Errorf("%s: secret is not the obvious demo value", f)
		}
	}
}

func TestCorrelationQueryHook(t *testing.T) {
	defer func(old func(string) error) { ValidateCorrelationQuery = old }(ValidateCorrelationQuery)
	cause := errors.New("undeclared reference to 'recrod'")
	var seen []string
	ValidateCorrelationQuery = func(q string) error {
		seen = append(seen, q)
		if strings.Contains(q, "recrod") {
			return cause
		}
		return nil
	}
	_, err := ParseIntegration([]byte(msiDoc(`"correlationQueryEnabled":true,"correlationQuery":"recrod.eventName == 'x'"`)))
	checkFieldError(t, err, "correlationQuery", "undeclared reference")
	if !errors.Is(err, cause) {
		t.Errorf("error does not wrap the compiler's: %v", err)
	}
	if _, err := ParseIntegration([]byte(msiDoc(`"correlationQuery":"record.eventName == 'x'"`))); err != nil {
		t.Errorf("good query refused: %v", err)
	}
	want := []string{"recrod.eventName == 'x'", "record.eventName == 'x'"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("queries compiled (-want +got):\n%s", diff)
	}
}

func TestResolveFieldMapCopies(t *testing.T) {
	before := ResolveFieldMap(nil)
	user := map[string][]string{"hosts": {"sourceIPAddress"}}
	got := ResolveFieldMap(user)
	got["hosts"][0] = "changed"
	got["user"][0] = "changed"
	user["hosts"][0] = "changed too"
	if diff := cmp.Diff(before, DefaultFieldMap); diff != "" {
		t.Errorf("DefaultFieldMap changed (-before +after):\n%s", diff)
	}
	in, err := ParseIntegration([]byte(msiDoc(`"fieldMap":{"hosts":["sourceIPAddress"]}`)))
	if err != nil {
		t.Fatal(err)
	}
	in.FieldMap["user"][0] = "changed"
	if DefaultFieldMap["user"][0] == "changed" {
		t.Errorf("a parsed integration's field map aliases DefaultFieldMap")
	}
	if diff := cmp.Diff([]string{"sourceIPAddress"}, in.FieldMap["hosts"]); diff != "" {
		t.Errorf("user entry not applied (-want +got):\n%s", diff)
	}
}

func TestValidateIntegration(t *testing.T) {
	valid := func() *Integration {
		in := defaultsWith("", "n", "ap-south1")
		in.FieldMap = map[string][]string{"hosts": {"sourceIPAddress"}}
		in.EventSensorUUIDs = []string{"6F1C2B4E-8A3D-4C5E-9F70-1A2B3C4D5E6F"}
		return in
	}
	in := valid()
	if err := ValidateIntegration(in); err != nil {
		t.Fatalf("ValidateIntegration: %v", err)
	}
	want := defaultsWith(TypeMSI, "n", "ap-south-1")
	want.FieldMap["hosts"] = []string{"sourceIPAddress"}
	want.EventSensorUUIDs = []string{"6f1c2b4e-8a3d-4c5e-9f70-1a2b3c4d5e6f"}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("resolved (-want +got):\n%s", diff)
	}

	tests := []struct {
		name         string
		change       func(*Integration)
		field, phrae string
	}{
		{"zero timeout", func(in *Integration) { in.Timeout = 0 }, "timeout", "at least 1"},
		{"bad region", func(in *Integration) { in.AWSRegion = "mars-1" }, "awsRegion", "not a supported region"},
		{"bad legacy region", func(in *Integration) { in.Type, in.AWSRegion = TypeLegacy, "" }, "amazonRegion", "is required"},
		{"bad type", func(in *Integration) { in.Type = "classic" }, "type", `must be "msi" or "legacy"`},
		{"half keys", func(in *Integration) { in.SecretAccessKey = demoSecret }, "accessKeyId", "required with secretAccessKey"},
		{"unknown target", func(in *Integration) { in.FieldMap["ip"] = []string{"sourceIPAddress"} }, "fieldMap.ip", "unknown field-map target"},
		{"bad uuid", func(in *Integration) { in.AlarmSensorUUIDs = []string{"x"} }, "alarmSensorUuids[0]", "must be a UUID"},
		{"no name", func(in *Integration) { in.Name = "" }, "name", "is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid()
			tt.change(in)
			checkFieldError(t, ValidateIntegration(in), tt.field, tt.phrae)
		})
	}
	checkFieldError(t, ValidateIntegration(nil), "", "no integration")
}

func TestSecretsNeverShown(t *testing.T) {
	secrets := []string{demoSecret, demoToken, demoExternal}
	in, err := ParseIntegration(readTestdata(t, "msi-full.json"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{
		"%v":     fmt.Sprintf("%v", in),
		"%+v":    fmt.Sprintf("%+v", in),
		"%#v":    fmt.Sprintf("%#v", in),
		"%v*":    fmt.Sprintf("%v", *in),
		"%+v*":   fmt.Sprintf("%+v", *in),
		"%#v*":   fmt.Sprintf("%#v", *in),
		"json":   string(js),
		"redact": fmt.Sprintf("%#v", in.Redact()),
	}
	for how, s := range shown {
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s shows secret %q: %s", how, sec, s)
			}
		}
	}
	if !strings.Contains(string(js), Redacted) {
		t.Errorf("json does not mark the secret as set: %s", js)
	}

	// Bad documents carrying secrets: no error may quote one, whatever is wrong.
	withSecrets := `"accessKeyId":"AKIAEXAMPLEDEMO00001","secretAccessKey":"` + demoSecret +
		`","sessionToken":"` + demoToken + `","roleArn":"arn:aws:iam::123456789012:role/r","externalId":"` + demoExternal + `"`
	bad := []string{
		`{"name":"n","awsRegion":"nowhere",` + withSecrets + `}`,
		`{"name":"","awsRegion":"us-east-1",` + withSecrets + `}`,
		`{"name":"n","awsRegion":"us-east-1",` + withSecrets + `,"timeout":-1}`,
		`{"name":"n","awsRegion":"us-east-1",` + withSecrets + `,"secretAccessKey":"` + demoSecret + `"}`,
		`{"name":"n","awsRegion":"us-east-1",` + withSecrets + ` "timeout": 1}`,
		`{"name":"n","awsRegion":"us-east-1","secretAccessKey":"` + demoSecret + `"}`,
		`{"name":"n","awsRegion":"us-east-1","sessionToken":"` + demoToken + `"}`,
		`{"name":"n","awsRegion":"us-east-1","externalId":"` + demoExternal + `"}`,
		`{"name":"n","awsRegion":"us-east-1","accessKeyId":"AKIAEXAMPLEDEMO00001","secretAccessKey":["` + demoSecret + `"]}`,
		`{"name":"n","awsRegion":"us-east-1","secretAccesKey":"` + demoSecret + `"}`,
		`{"name":"n","awsRegion":"us-east-1","proxy":"http://u:` + demoSecret + `@p:1"}`,
		`{"name":"n","awsRegion":"us-east-1","endpoint":"` + demoSecret + `"}`,
		`{"name":"n","awsRegion":"us-east-1","roleArn":"arn:aws:iam::123456789012:role/r","externalId":"` + demoExternal + ` x"}`,
		`{"type":"legacy","name":"n","amazonRegion":"us-east-1",` + withSecrets + `}`,
		`{"name":"n","awsRegion":"` + demoSecret + `"}`,
	}
	for i, doc := range bad {
		_, err := ParseIntegration([]byte(doc))
		if err == nil {
			t.Errorf("bad document %d accepted", i)
			continue
		}
		var e *Error
		errors.As(err, &e)
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", e), ErrorMessage(err)} {
			if slices.ContainsFunc(secrets, func(sec string) bool { return strings.Contains(s, sec) }) {
				t.Errorf("document %d: error shows a secret: %s", i, s)
			}
		}
	}
}
