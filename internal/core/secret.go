package core

import (
	"log/slog"
	"net/url"
	"strings"
)

// Redacted is what a secret looks like wherever settings are printed, logged or returned.
const Redacted = "********"

// Secret is a write-only string: it can be read from JSON but never prints, marshals or logs its
// value. Code that must use the value (the credentials provider, the store's sealer) calls Reveal.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether a value is present.
func (s Secret) IsSet() bool { return s != "" }

// String never returns the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString never returns the value, so %#v is safe too.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue keeps slog from logging the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the redaction marker, or "" when unset.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText is used by encoders that prefer text; it never writes the value either.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Scrubber replaces every secret of in (secret key, session token, external id and a proxy
// password, raw and URL-escaped) with Redacted, for text that came from elsewhere (SDK errors,
// server messages) and may quote them. Values shorter than four characters are left alone: they
// would redact ordinary words.
func (in *Integration) Scrubber() *strings.Replacer {
	var pairs []string
	add := func(v string) {
		if len(v) >= 4 {
			pairs = append(pairs, v, Redacted)
		}
	}
	add(in.SecretAccessKey.Reveal())
	add(in.SessionToken.Reveal())
	add(in.ExternalID.Reveal())
	if u, err := url.Parse(in.Proxy); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
		}
	}
	return strings.NewReplacer(pairs...)
}
