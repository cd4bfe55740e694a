package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/trailproof/trailproof/internal/core"
)

// BearerToken accepts requests that carry "Authorization: Bearer <token>". The comparison is in
// constant time over SHA-256 digests, so neither the token's bytes nor its length leak through
// timing.
func BearerToken(token string) Authenticator {
	want := sha256.Sum256([]byte(token))
	return func(r *http.Request) error {
		h := r.Header.Get("Authorization")
		scheme, got, ok := strings.Cut(h, " ")
		if h == "" {
			return core.Errorf(core.EUNAUTHORIZED, "authentication required: send Authorization: Bearer <token> (trailproof serve printed where the token is kept)")
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return core.Errorf(core.EUNAUTHORIZED, "the Authorization header must be Bearer <token>")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			return core.Errorf(core.EUNAUTHORIZED, "the bearer token is not valid")
		}
		return nil
	}
}
