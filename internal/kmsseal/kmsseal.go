// Package kmsseal is a seal.Sealer backed by AWS KMS: integration secrets are encrypted by a KMS
// key, so the table holds only ciphertext and every decryption is an authorized, CloudTrail-logged
// KMS call.
//
// Each ciphertext is bound to where it is kept (seal.Binding) with a KMS encryption context
// {"app": "trailproof", "integrationId": <id>, "field": <field>}: KMS refuses to decrypt it under
// another context, and the context is written to the KMS Decrypt event in CloudTrail, which so
// names the integration whose secret was read. The binding is also kept in the ciphertext's
// header, so that a blob moved to another record or field is refused with a clear error before
// KMS is asked.
//
// Format: 'B' | uint16 big-endian length of the ID | the ID | uint16 length of the field | the
// field | KMS CiphertextBlob. The earlier format 'K' (ID only, no field in the context) keeps
// opening for its integration.
package kmsseal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trailproof/trailproof/internal/store/seal"
)

// KMSAPI is the part of the KMS client the sealer uses.
type KMSAPI interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Formats: the first byte of every ciphertext, telling it apart from seal.AESGCM's (1 or 2).
const (
	formatKMS      = 'K' // bound to the integration ID only
	formatKMSBound = 'B' // bound to the integration ID and the field
)

// App is the encryption context's "app" value.
const App = "trailproof"

// Sealer encrypts with one KMS key.
type Sealer struct {
	client KMSAPI
	keyID  string
}

var _ seal.Sealer = (*Sealer)(nil)

// New returns a Sealer for the KMS key keyID (an ID, ARN or alias).
func New(client KMSAPI, keyID string) (*Sealer, error) {
	if client == nil || keyID == "" {
		return nil, errors.New("kms sealer: a client and a key ID are required")
	}
	return &Sealer{client: client, keyID: keyID}, nil
}

func encryptionContext(where seal.Binding, withField bool) map[string]string {
	ec := map[string]string{"app": App}
	if where.IntegrationID != "" {
		ec["integrationId"] = where.IntegrationID
	}
	if withField {
		ec["field"] = where.Field
	}
	return ec
}

// Seal encrypts plaintext under the key, bound to where.
func (s *Sealer) Seal(ctx context.Context, plaintext []byte, where seal.Binding) ([]byte, error) {
	if len(where.IntegrationID) > 0xffff || len(where.Field) > 0xffff {
		return nil, errors.New("kms seal: integration ID or field too long")
	}
	out, err := s.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(s.keyID), Plaintext: plaintext,
		EncryptionContext: encryptionContext(where, true)})
	if err != nil {
		return nil, fmt.Errorf("kms seal (key %s): %w", s.keyID, err)
	}
	b := make([]byte, 0, 5+len(where.IntegrationID)+len(where.Field)+len(out.CiphertextBlob))
	b = append(b, formatKMSBound)
	for _, part := range []string{where.IntegrationID, where.Field} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(part)))
		b = append(b, part...)
	}
	return append(b, out.CiphertextBlob...), nil
}

// Open decrypts a ciphertext from Seal, which must have been sealed for where.
func (s *Sealer) Open(ctx context.Context, ciphertext []byte, where seal.Binding) ([]byte, error) {
	if len(ciphertext) < 3 || (ciphertext[0] != formatKMS && ciphertext[0] != formatKMSBound) {
		return nil, errors.New("kms open: not a KMS-sealed secret")
	}
	bound := ciphertext[0] == formatKMSBound
	rest := ciphertext[1:]
	next := func() (string, bool) {
		if len(rest) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(rest))
		if len(rest) < 2+n {
			return "", false
		}
		v := string(rest[2 : 2+n])
		rest = rest[2+n:]
		return v, true
	}
	sealedFor, ok := next()
	field := where.Field
	if ok && bound {
		field, ok = next()
	}
	if !ok || len(rest) == 0 {
		return nil, errors.New("kms open: truncated ciphertext")
	}
	if sealedFor != where.IntegrationID || field != where.Field {
		return nil, fmt.Errorf("kms open: sealed for %s of integration %q, read as %s of %q: %w",
			field, sealedFor, where.Field, where.IntegrationID, seal.ErrMoved)
	}
	out, err := s.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(s.keyID), CiphertextBlob: rest,
		EncryptionContext: encryptionContext(where, bound)})
	if err != nil {
		return nil, fmt.Errorf("kms open (key %s): %w", s.keyID, err)
	}
	return out.Plaintext, nil
}
