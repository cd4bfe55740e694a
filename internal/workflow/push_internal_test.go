package workflow

import "testing"

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
