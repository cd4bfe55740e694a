package emulator

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// STS's GetCallerIdentity, which a client asks to learn the account of its credentials.
//
// It is served as strictly as LookupEvents: signed with SigV4 for service sts, by a key the
// emulator knows (WithKeys) and that names its account (Key.AccountID); anything else is refused
// as STS refuses it. Like AWS, it needs no permission: a Denied key is answered too.

// isSTS reports whether r is an STS Query-protocol call (a form POST signed for service sts).
func isSTS(r *http.Request) bool {
	cred, ok := parseCredential(r.Header.Get("Authorization"))
	return r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == "" && ok && cred.Service == "sts" &&
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// serveSTS answers GetCallerIdentity; any other STS action is refused.
func (e *Emulator) serveSTS(w http.ResponseWriter, r *http.Request, reqID string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeSTSError(w, reqID, http.StatusBadRequest, "MalformedInput", "cannot read request body")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "GetCallerIdentity" {
		writeSTSError(w, reqID, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("only GetCallerIdentity is served, got %q", form.Get("Action")))
		return
	}
	cred, _ := parseCredential(r.Header.Get("Authorization"))
	key, ok := e.keys[cred.AccessKeyID]
	if !ok || key.AccountID == "" {
		writeSTSError(w, reqID, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	verify := e.verify
	if verify == nil {
		verify = SigV4Verifier() // always checked: the answer names the key's account
	}
	if err := verify(r, body, key); err != nil {
		writeSTSError(w, reqID, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided: "+err.Error())
		return
	}
	e.mu.Lock()
	e.stats.CallerIdentity++
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
		`<Arn>arn:aws:iam::%[1]s:user/emulated</Arn><UserId>%[2]s</UserId><Account>%[1]s</Account>`+
		`</GetCallerIdentityResult><ResponseMetadata><RequestId>%[3]s</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
		xmlText(key.AccountID), xmlText(key.AccessKeyID), reqID)
}

func writeSTSError(w http.ResponseWriter, reqID string, status int, code, message string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		code, xmlText(message), reqID)
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
