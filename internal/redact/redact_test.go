package redact

import "testing"

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc..."},
		{"", 0, ""},
		{"héllo", 2, "hé..."},
		{"日本語", 3, "日本語"},
		{"日本語", 1, "日..."},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestMaskKey(t *testing.T) {
	for in, want := range map[string]string{
		"AKIAIOSFODNN7EXAMPLE": "AKIA...MPLE",
		"AKIA1234":             "AKIA1234",
		"":                     "",
	} {
		if got := MaskKey(in); got != want {
			t.Errorf("MaskKey(%q) = %q, want %q", in, got, want)
		}
	}
}
