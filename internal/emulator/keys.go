package emulator

import (
	"net/http"
	"strings"

	"github.com/trailproof/trailproof/internal/core"
)

// Key is an access key the emulator knows. With a key set configured (WithKeys), a call signed
// with any other access key is refused with UnrecognizedClientException, as AWS does.
type Key struct {
	AccessKeyID string
	// SecretAccessKey is kept for a Verifier that checks SigV4 signatures; the emulator itself
	// only reads the access key from the Authorization header.
	SecretAccessKey core.Secret
	// AccountID names the account in AccessDenied messages (optional).
	AccountID string
	// Denied marks a key that authenticates but lacks cloudtrail:LookupEvents: its calls are
	// answered AccessDeniedException, so clients can be tested against a badly scoped policy.
	Denied bool
}

// Verifier checks a request's signature against the key it claims. It is the hook for SigV4
// verification: the emulator calls it, when set, after finding the key and before anything else;
// an error is answered InvalidSignatureException. body is the request body already read.
type Verifier func(r *http.Request, body []byte, key Key) error

// credential is what a SigV4 Authorization header says about its signer.
type credential struct {
	AccessKeyID string
	Region      string
	Service     string
}

// parseCredential reads "AWS4-HMAC-SHA256 Credential=AKID/20240730/us-east-1/cloudtrail/aws4_request,
// SignedHeaders=..., Signature=...". ok is false when there is no usable Credential.
func parseCredential(authorization string) (c credential, ok bool) {
	_, rest, found := strings.Cut(authorization, "Credential=")
	if !found {
		return credential{}, false
	}
	if i := strings.IndexAny(rest, ", "); i >= 0 {
		rest = rest[:i]
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[0] == "" || parts[4] != "aws4_request" {
		return credential{}, false
	}
	return credential{AccessKeyID: parts[0], Region: parts[2], Service: parts[3]}, true
}
