package core

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// storedForUpdate is an integration as the store holds it: keys with a session token and a role
// with its external ID.
func storedForUpdate(t *testing.T) *Integration {
	t.Helper()
	in, err := ParseIntegration(mustJSON(t, updateDoc(nil)))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// updateDoc is the document the store's integration was created from, with changes applied
// (a nil value deletes the member).
func updateDoc(changes map[string]any) map[string]any {
	doc := map[string]any{
		"name": "prod", "awsRegion": "eu-west-1",
		"accessKeyId": "AKIAEXAMPLEDEMO00001", "secretAccessKey": demoSecret, "sessionToken": demoToken,
		"roleArn": "arn:aws:iam::123456789012:role/reader", "externalId": demoExternal,
	}
	for k, v := range changes {
		if v == nil {
			delete(doc, k)
		} else {
			doc[k] = v
		}
	}
	return doc
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendsBackRead is what a Director sends after a GET: every secret as the marker.
var sendsBackRead = map[string]any{"secretAccessKey": Redacted, "sessionToken": Redacted, "externalId": Redacted}

func with(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

func TestParseIntegrationUpdateKeepsSecretsOnlyForTheirDestination(t *testing.T) {
	omitted := map[string]any{"secretAccessKey": nil, "sessionToken": nil, "externalId": nil}
	refused := []struct {
		name    string
		changes map[string]any
		field   string
	}{
		{"endpoint, secrets as markers", with(sendsBackRead, map[string]any{"endpoint": "https://listener.example.net"}), "endpoint"},
		{"endpoint, secrets left out", with(omitted, map[string]any{"endpoint": "https://listener.example.net"}), "endpoint"},
		{"proxy", with(sendsBackRead, map[string]any{"proxy": "http://proxy.example.net:3128"}), "proxy"},
		{"verifySsl off", with(sendsBackRead, map[string]any{"verifySsl": false}), "verifySsl"},
		{"region", with(omitted, map[string]any{"awsRegion": "us-east-1"}), "awsRegion"},
		{"role, keys kept", with(omitted, map[string]any{"roleArn": "arn:aws:iam::999999999999:role/other", "externalId": "x-new-external"}), "roleArn"},
		{"external id, keys kept", with(omitted, map[string]any{"externalId": "x-new-external"}), "externalId"},
		{"type legacy, key kept", map[string]any{"type": "legacy", "name": "prod", "amazonRegion": "eu-west-1",
			"accessKeyId": "AKIAEXAMPLEDEMO00001", "secretAccessKey": Redacted}, "type"},
		{"marker with nothing stored", nil, "sessionToken"},
		{"marker for a new key", with(sendsBackRead, map[string]any{"accessKeyId": "AKIAOTHERKEY00000001"}), "secretAccessKey"},
		{"marker for a new role", with(sendsBackRead, map[string]any{"roleArn": "arn:aws:iam::999999999999:role/other"}), "externalId"},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			stored := storedForUpdate(t)
			doc := updateDoc(tc.changes)
			if tc.changes == nil { // the stored integration has no session token
				stored.SessionToken = ""
				doc = with(updateDoc(nil), map[string]any{"sessionToken": Redacted})
			}
			if tc.changes["type"] == "legacy" {
				doc = tc.changes
			}
			_, err := ParseIntegrationUpdate(mustJSON(t, doc), stored)
			if err == nil {
				t.Fatalf("accepted; want a refusal naming %s", tc.field)
			}
			if got := ErrorField(err); got != tc.field || ErrorCode(err) != EINVALID {
				t.Fatalf("error %q (field %q, code %q); want field %q", err, got, ErrorCode(err), tc.field)
			}
			if tc.changes != nil && tc.field != "secretAccessKey" && tc.field != "externalId" && tc.field != "sessionToken" {
				if want := "send the secret again to change where it is used"; !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not say %q", err, want)
				}
			}
		})
	}

	accepted := []struct {
		name    string
		changes map[string]any
		check   func(t *testing.T, in *Integration)
	}{
		{"rename, markers", with(sendsBackRead, map[string]any{"name": "renamed"}), func(t *testing.T, in *Integration) {
			if in.Name != "renamed" || in.SecretAccessKey.Reveal() != demoSecret || in.SessionToken.Reveal() != demoToken || in.ExternalID.Reveal() != demoExternal {
				t.Errorf("secrets not kept: %+v", in.Redact())
			}
		}},
		{"rename, secrets left out", with(omitted, map[string]any{"name": "renamed"}), func(t *testing.T, in *Integration) {
			if in.SecretAccessKey.Reveal() != demoSecret || in.SessionToken.Reveal() != demoToken || in.ExternalID.Reveal() != demoExternal {
				t.Errorf("secrets not kept: %+v", in.Redact())
			}
		}},
		{"ap-south1 spelling of the same region", with(sendsBackRead, map[string]any{"awsRegion": "ap-south1"}), nil},
		{"endpoint with every secret sent again", map[string]any{"endpoint": "https://listener.example.net"}, func(t *testing.T, in *Integration) {
			if in.Endpoint != "https://listener.example.net" || in.SecretAccessKey.Reveal() != demoSecret {
				t.Errorf("update not applied: %+v", in.Redact())
			}
		}},
		{"new secret drops the old session token", with(omitted, map[string]any{"secretAccessKey": "a-new-secret-value"}), func(t *testing.T, in *Integration) {
			if in.SessionToken.IsSet() || in.ExternalID.Reveal() != demoExternal {
				t.Errorf("session token kept with a new secret, or external id lost: %+v", in.Redact())
			}
		}},
		{"credentials removed, endpoint changed", map[string]any{"accessKeyId": nil, "secretAccessKey": nil, "sessionToken": nil,
			"roleArn": nil, "externalId": nil, "endpoint": "https://cloudtrail.us-east-1.amazonaws.com"}, func(t *testing.T, in *Integration) {
			if in.SecretAccessKey.IsSet() || in.SessionToken.IsSet() || in.ExternalID.IsSet() {
				t.Errorf("a secret was kept without its credential: %+v", in.Redact())
			}
		}},
	}
	for _, tc := range accepted {
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			stored := storedForUpdate(t)
			if tc.name == "ap-south1 spelling of the same region" {
				stored.AWSRegion = "ap-south-1"
			}
			in, err := ParseIntegrationUpdate(mustJSON(t, updateDoc(tc.changes)), stored)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.check != nil {
				tc.check(t, in)
			}
		})
	}
}
