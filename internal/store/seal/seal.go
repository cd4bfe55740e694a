// Package seal keeps integration secrets encrypted at rest. A Sealer encrypts and decrypts opaque
// bytes; AESGCM is the one shared by the bolt and dynamo stores (a KMS-backed Sealer can replace it
// in AWS without touching either store). The package also defines how a store lays out an
// integration: its settings as JSON with every secret redacted, and the secrets in one sealed blob,
// so that listing integrations never needs to decrypt anything.
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/trailproof/trailproof/internal/core"
)

// Sealer encrypts secrets before a store writes them and decrypts them when a store reads them.
// Every ciphertext is bound to where it is kept (Binding): Open fails for a ciphertext sealed for
// another integration or field, so a blob copied from one record to another does not open.
type Sealer interface {
	Seal(ctx context.Context, plaintext []byte, where Binding) ([]byte, error)
	Open(ctx context.Context, ciphertext []byte, where Binding) ([]byte, error)
}

// Binding names where a sealed value is kept: the integration's ID (the store's key for it) and
// the field (attribute) holding the value.
type Binding struct {
	IntegrationID string
	Field         string
}

// FieldSecrets is the field of a stored integration that holds its sealed secrets.
const FieldSecrets = "secrets"

// AdditionalData is the AEAD additional data of a ciphertext of format version that is kept
// where b says: the version byte, then the app, integration ID and field, each length-prefixed
// so that no two bindings give the same bytes.
func (b Binding) AdditionalData(version byte) []byte {
	out := []byte{version}
	for _, part := range []string{"trailproof", b.IntegrationID, b.Field} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(part)))
		out = append(out, part...)
	}
	return out
}

// ErrMoved says a ciphertext was not sealed for where it is read from.
var ErrMoved = errors.New("the sealed value does not open here: it was sealed for another integration or field " +
	"(copied from another record), or under another key (wrong key), or altered")

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// Format versions prefix every AESGCM ciphertext. Version 1 authenticated the version byte only
// (a blob opened anywhere); version 2 authenticates the Binding too. Seal writes version 2; Open
// reads both, so values stored before the binding keep opening until they are next written.
const (
	formatV1 = 1
	formatV2 = 2
)

// AESGCM seals with AES-256-GCM under one key; each ciphertext is version | nonce(12) | sealed.
type AESGCM struct {
	aead cipher.AEAD
}

// NewAESGCM returns an AESGCM sealer for a 32-byte key.
func NewAESGCM(key []byte) (*AESGCM, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal key: need %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &AESGCM{aead: aead}, nil
}

// Seal encrypts plaintext under a fresh random nonce, bound to where.
func (a *AESGCM) Seal(_ context.Context, plaintext []byte, where Binding) ([]byte, error) {
	ns := a.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+a.aead.Overhead())
	out[0] = formatV2
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return a.aead.Seal(out, out[1:1+ns], plaintext, where.AdditionalData(formatV2)), nil
}

// Open decrypts a ciphertext from Seal; it fails when the bytes were altered, sealed under
// another key, or (version 2) sealed for another integration or field.
func (a *AESGCM) Open(_ context.Context, ciphertext []byte, where Binding) ([]byte, error) {
	ns := a.aead.NonceSize()
	if len(ciphertext) < 1+ns+a.aead.Overhead() || (ciphertext[0] != formatV1 && ciphertext[0] != formatV2) {
		return nil, errors.New("open sealed secret: not an AES-GCM ciphertext of a known version")
	}
	ad := ciphertext[:1]
	if ciphertext[0] == formatV2 {
		ad = where.AdditionalData(formatV2)
	}
	pt, err := a.aead.Open(nil, ciphertext[1:1+ns], ciphertext[1+ns:], ad)
	if err != nil {
		if ciphertext[0] == formatV1 {
			return nil, fmt.Errorf("open sealed secret (wrong key or corrupted data): %w", err)
		}
		return nil, fmt.Errorf("open sealed %s of integration %q: %w", where.Field, where.IntegrationID, ErrMoved)
	}
	return pt, nil
}

// LoadOrCreateKey reads the AES key kept in path (base64, one line), creating the file with a new
// random key and mode 0600 when it does not exist. A key file that group or others may access is
// refused: anyone who can read it can read every stored secret.
func LoadOrCreateKey(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal key %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if werr == nil {
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, fmt.Errorf("write seal key %s: %w", path, werr)
		}
		return key, nil
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("create seal key %s: %w", path, err)
	}
	return LoadKey(path)
}

// LoadKey reads an existing key file, refusing one that group or others may access.
func LoadKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, &core.Error{Code: core.EINVALID, File: path, Message: fmt.Sprintf(
			"key file is accessible by group or others (mode %04o); it guards every stored secret: run chmod 600 %s", perm, path)}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seal key %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != KeySize {
		return nil, &core.Error{Code: core.EINVALID, File: path,
			Message: fmt.Sprintf("key file must hold %d bytes in base64 on one line", KeySize)}
	}
	return key, nil
}

// secrets is the sealed part of an integration. Plain strings, not core.Secret, because Secret
// marshals as the redaction marker.
type secrets struct {
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	SessionToken    string `json:"sessionToken,omitempty"`
	ExternalID      string `json:"externalId,omitempty"`
}

// SealedIntegration is an integration as a store keeps it.
type SealedIntegration struct {
	// Settings is the integration's JSON with every secret redacted (core.Secret marshals that
	// way), so it can be listed and shown as it is.
	Settings json.RawMessage `json:"settings"`
	// Secrets is the sealed JSON of the secret values; nil when the integration has none.
	Secrets []byte `json:"secrets,omitempty"`
}

// SealIntegration splits in into redacted settings and sealed secrets.
func SealIntegration(ctx context.Context, s Sealer, in *core.Integration) (*SealedIntegration, error) {
	settings, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode integration %s: %w", in.ID, err)
	}
	out := &SealedIntegration{Settings: settings}
	sec := secrets{
		SecretAccessKey: in.SecretAccessKey.Reveal(),
		SessionToken:    in.SessionToken.Reveal(),
		ExternalID:      in.ExternalID.Reveal(),
	}
	if sec == (secrets{}) {
		return out, nil
	}
	plain, err := json.Marshal(sec)
	if err != nil {
		return nil, fmt.Errorf("encode secrets of integration %s: %w", in.ID, err)
	}
	out.Secrets, err = s.Seal(ctx, plain, Binding{IntegrationID: in.ID, Field: FieldSecrets})
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("seal secrets of integration %s: %w", in.ID, err)
	}
	return out, nil
}

// Integration decodes the settings; with reveal it opens the secrets into the Secret fields,
// without it the fields keep the redaction marker the settings were stored with. id is the key
// the store read the record under: the secrets open only if they were sealed for it, and the
// settings must name it too, so neither a blob nor a whole record moved under another key opens.
func (si *SealedIntegration) Integration(ctx context.Context, s Sealer, id string, reveal bool) (*core.Integration, error) {
	in := new(core.Integration)
	if err := json.Unmarshal(si.Settings, in); err != nil {
		return nil, fmt.Errorf("decode stored integration %s: %w", id, err)
	}
	if in.ID != id {
		return nil, fmt.Errorf("stored integration %s holds the settings of integration %q: %w", id, in.ID, ErrMoved)
	}
	if !reveal {
		return in.Redact(), nil
	}
	var sec secrets
	if len(si.Secrets) > 0 {
		plain, err := s.Open(ctx, si.Secrets, Binding{IntegrationID: id, Field: FieldSecrets})
		if err != nil {
			return nil, fmt.Errorf("secrets of integration %s: %w", in.ID, err)
		}
		err = json.Unmarshal(plain, &sec)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("decode secrets of integration %s: %w", in.ID, err)
		}
	}
	in.SecretAccessKey = core.Secret(sec.SecretAccessKey)
	in.SessionToken = core.Secret(sec.SessionToken)
	in.ExternalID = core.Secret(sec.ExternalID)
	return in, nil
}
