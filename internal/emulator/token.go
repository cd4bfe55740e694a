package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// pageToken is what a NextToken carries: the query it belongs to and the last event served, so
// the next page starts right after it even when newer events have become visible meanwhile.
type pageToken struct {
	Query string    `json:"q"`
	At    time.Time `json:"t"`
	ID    string    `json:"i"`
}

// sealToken makes a token opaque to clients and tamper-evident: base64 of the position and an
// HMAC over it. The same query and position always give the same token.
func (e *Emulator) sealToken(t pageToken) string {
	payload, _ := json.Marshal(t) // strings and a time: cannot fail
	mac := hmac.New(sha256.New, e.tokenKey)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// openToken checks a token and that it was issued for the query given.
func (e *Emulator) openToken(s, fingerprint string) (pageToken, error) {
	errBad := errors.New("the NextToken is not valid: it was not issued by this service")
	p, m, ok := strings.Cut(s, ".")
	if !ok {
		return pageToken{}, errBad
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sum, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil {
		return pageToken{}, errBad
	}
	mac := hmac.New(sha256.New, e.tokenKey)
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)[:16]) {
		return pageToken{}, errBad
	}
	var t pageToken
	if err := json.Unmarshal(payload, &t); err != nil {
		return pageToken{}, errBad
	}
	if t.Query != fingerprint {
		return pageToken{}, errors.New("the NextToken was issued for another query: StartTime, EndTime, LookupAttributes and EventCategory must be the same on every page")
	}
	return t, nil
}
