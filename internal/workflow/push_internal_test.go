package workflow

import (
	"testing"

	"github.com/trailproof/trailproof/internal/core"
)

func TestRoleAccount(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:iam::123456789012:role/reader":       "123456789012",
		"arn:aws-us-gov:iam::210987654321:role/a/b/c": "210987654321",
		"":               "",
		"not-an-arn":     "",
		"arn:aws:iam::x": "",
	} {
		if got := roleAccount(in); got != want {
			t.Errorf("roleAccount(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWithPushed: a pushed event LookupEvents also returned is kept once, as LookupEvents gave it;
// the others are added once each.
func TestWithPushed(t *testing.T) {
	read := []core.RawEvent{{EventID: "a", Region: "polled"}}
	pushed := []core.RawEvent{{EventID: "a", Region: "pushed"}, {EventID: "b"}, {EventID: "b"}}
	got := withPushed(read, pushed)
	if len(got) != 2 || got[0].Region != "polled" || got[1].EventID != "b" {
		t.Errorf("got %+v", got)
	}
}
