package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strings"
	"unicode"

	"github.com/trailproof/trailproof/internal/core"
)

// MinTokenBits is the least entropy a bearer token may have: 128 bits, as a random 16-byte value.
const MinTokenBits = 128

// MakeTokenHint says how to make a token strong enough.
const MakeTokenHint = "make one with `openssl rand -hex 32`"

// checkToken refuses a token an attacker could guess: one estimated below MinTokenBits of entropy
// from its length and the kinds of characters it uses, one of few distinct characters, and one
// that repeats a shorter pattern. what names where the token came from.
func checkToken(token, what string) error {
	bits := tokenBits(token)
	switch {
	case bits < MinTokenBits:
		return core.FieldError(what, "is too weak: about %d bits of entropy, at least %d are needed (a long random value); %s", int(bits), MinTokenBits, MakeTokenHint)
	case distinct(token) < 8 || periodic(token):
		return core.FieldError(what, "is too weak: it repeats a few characters or a pattern; use a random value: %s", MakeTokenHint)
	}
	return nil
}

// tokenBits estimates a token's entropy as if each character were drawn at random from the
// character classes it uses (lower case, upper case, digits, the rest): an upper bound for
// anything a person types, exact for the random values MakeTokenHint makes.
func tokenBits(s string) float64 {
	var lower, upper, digit, other bool
	n := 0
	for _, r := range s {
		n++
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case unicode.IsPrint(r):
			other = true
		}
	}
	alphabet := 0
	for _, c := range []struct {
		used bool
		size int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 32}} {
		if c.used {
			alphabet += c.size
		}
	}
	if alphabet < 2 {
		return 0
	}
	return float64(n) * math.Log2(float64(alphabet))
}

func distinct(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen)
}

// periodic reports whether s is a shorter string repeated (abcabcabc...).
func periodic(s string) bool {
	for p := 1; p <= len(s)/2; p++ {
		if strings.Repeat(s[:p], len(s)/p+1)[:len(s)] == s {
			return true
		}
	}
	return false
}

// checkDataDir refuses a data folder others may write to: they could replace the store, its key
// or the token.
func checkDataDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data folder %s: %w", dir, err)
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return &core.Error{Code: core.EINVALID, Field: "data", Message: fmt.Sprintf(
			"the data folder %s is writable by group or others (mode %04o): run chmod go-w %s (or chmod 700 %s)", dir, perm, dir, dir)}
	}
	return nil
}

// checkPrivateFile refuses an existing file of the data folder (the store) that others may read
// or write; one that does not exist yet is created 0600.
func checkPrivateFile(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return &core.Error{Code: core.EINVALID, File: path, Message: fmt.Sprintf(
			"the file is accessible by group or others (mode %04o): run chmod 600 %s", perm, path)}
	}
	return nil
}

// loadTLS reads the certificate and key serve listens with; both or neither must be given.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "":
		return nil, core.FieldError("tls-cert", "is required with --tls-key: give the certificate (PEM) that goes with the key")
	case keyFile == "":
		return nil, core.FieldError("tls-key", "is required with --tls-cert: give the private key (PEM) of the certificate")
	}
	if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o007 != 0 {
		return nil, &core.Error{Code: core.EINVALID, Field: "tls-key", File: keyFile, Message: fmt.Sprintf(
			"the private key is accessible by others (mode %04o): run chmod o-rwx %s", st.Mode().Perm(), keyFile)}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &core.Error{Code: core.EINVALID, Field: "tls-cert", Message: fmt.Sprintf(
			"cannot load the certificate %s with the key %s: %v", certFile, keyFile, err), Err: err}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
