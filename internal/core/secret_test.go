package core

import (
	"strings"
	"testing"
)

// TestScrubber checks that every secret an integration holds, the proxy password included (raw
// and as it appears URL-escaped in an error that quotes the proxy URL), is replaced, and that
// the access key id, which is not secret, stays readable.
func TestScrubber(t *testing.T) {
	in := &Integration{
		AccessKeyID:     "AKIAIOSFODNN7EXAMPLE",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		SessionToken:    "FwoGZXIvYXdzEXAMPLETOKEN",
		ExternalID:      "ext-id-1234",
		Proxy:           "http://user:p%40ss%2Fw0rd@proxy.example:3128",
	}
	text := "key AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY token FwoGZXIvYXdzEXAMPLETOKEN " +
		"external ext-id-1234 proxy p@ss/w0rd escaped p%40ss%2Fw0rd"
	got := in.Scrubber().Replace(text)
	for _, secret := range []string{"wJalrXUtnFEMI", "FwoGZXIvYXdz", "ext-id-1234", "p@ss/w0rd", "p%40ss%2Fw0rd"} {
		if strings.Contains(got, secret) {
			t.Errorf("scrubbed text still holds %q: %s", secret, got)
		}
	}
	if !strings.Contains(got, "AKIAIOSFODNN7EXAMPLE") {
		t.Errorf("scrubbed text lost the access key id: %s", got)
	}
}
