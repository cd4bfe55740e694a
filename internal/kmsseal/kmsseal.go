// Package kmsseal is a seal.Sealer backed by AWS KMS: integration secrets are encrypted by a KMS
// key, so the table holds only ciphertext and every decryption is an authorized, CloudTrail-logged
// KMS call.
//
// Each ciphertext is bound to its integration with a KMS encryption context
// {"app": "trailproof", "integrationId": <id>}: KMS refuses to decrypt it under another context,
// and the context is written to the KMS Decrypt event in CloudTrail, which so names the
// integration whose secret was read. seal.Sealer's methods carry no integration ID, so the
// store's caller passes it in the context (WithIntegrationID; BindStore does it for every
// integration method of a store). The ID is also kept in the ciphertext's header, so that a
// caller that does not know it (a step function reading a run's integration through the plain
// store) can still open it: the binding is then checked by KMS against the recorded ID, and
// against the caller's ID whenever the caller gives one.
//
// Format: 'K' | uint16 big-endian length of the ID | the ID | KMS CiphertextBlob.
package kmsseal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/seal"
)

// KMSAPI is the part of the KMS client the sealer uses.
type KMSAPI interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// formatKMS starts every ciphertext, telling it apart from seal.AESGCM's (which starts with 1).
const formatKMS = 'K'

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

type idKey struct{}

// WithIntegrationID returns ctx naming the integration whose secrets are sealed or opened.
func WithIntegrationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, idKey{}, id)
}

func integrationID(ctx context.Context) string {
	id, _ := ctx.Value(idKey{}).(string)
	return id
}

func encryptionContext(id string) map[string]string {
	ec := map[string]string{"app": App}
	if id != "" {
		ec["integrationId"] = id
	}
	return ec
}

// Seal encrypts plaintext under the key, bound to the integration named in ctx.
func (s *Sealer) Seal(ctx context.Context, plaintext []byte) ([]byte, error) {
	id := integrationID(ctx)
	if len(id) > 0xffff {
		return nil, errors.New("kms seal: integration ID too long")
	}
	out, err := s.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(s.keyID), Plaintext: plaintext,
		EncryptionContext: encryptionContext(id)})
	if err != nil {
		return nil, fmt.Errorf("kms seal (key %s): %w", s.keyID, err)
	}
	b := make([]byte, 0, 3+len(id)+len(out.CiphertextBlob))
	b = append(b, formatKMS)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	return append(b, out.CiphertextBlob...), nil
}

// Open decrypts a ciphertext from Seal. When ctx names an integration, the ciphertext must have
// been sealed for it.
func (s *Sealer) Open(ctx context.Context, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 3 || ciphertext[0] != formatKMS {
		return nil, errors.New("kms open: not a KMS-sealed secret")
	}
	n := int(binary.BigEndian.Uint16(ciphertext[1:3]))
	if len(ciphertext) < 3+n+1 {
		return nil, errors.New("kms open: truncated ciphertext")
	}
	sealedFor := string(ciphertext[3 : 3+n])
	if want := integrationID(ctx); want != "" && want != sealedFor {
		return nil, core.Errorf(core.EINTERNAL, "kms open: the secret was sealed for integration %q, not %q", sealedFor, want)
	}
	out, err := s.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(s.keyID), CiphertextBlob: ciphertext[3+n:],
		EncryptionContext: encryptionContext(sealedFor)})
	if err != nil {
		return nil, fmt.Errorf("kms open (key %s): %w", s.keyID, err)
	}
	return out.Plaintext, nil
}

// BindStore wraps a store so that each integration method tells the sealer which integration
// it seals or opens.
func BindStore(s core.Store) core.Store { return boundStore{s} }

type boundStore struct{ core.Store }

func (b boundStore) CreateIntegration(ctx context.Context, in *core.Integration) error {
	return b.Store.CreateIntegration(WithIntegrationID(ctx, in.ID), in)
}

func (b boundStore) UpdateIntegration(ctx context.Context, in *core.Integration) error {
	return b.Store.UpdateIntegration(WithIntegrationID(ctx, in.ID), in)
}

// PutSensors and ListSensors pass through to the store when it keeps sensors.
func (b boundStore) PutSensors(ctx context.Context, integrationID string, sensors []core.Sensor) error {
	ss, ok := b.Store.(core.SensorStore)
	if !ok {
		return errors.New("the store keeps no sensors")
	}
	return ss.PutSensors(ctx, integrationID, sensors)
}

func (b boundStore) ListSensors(ctx context.Context, integrationID string) ([]core.Sensor, error) {
	ss, ok := b.Store.(core.SensorStore)
	if !ok {
		return nil, errors.New("the store keeps no sensors")
	}
	return ss.ListSensors(ctx, integrationID)
}

func (b boundStore) GetIntegration(ctx context.Context, id string) (*core.Integration, error) {
	return b.Store.GetIntegration(WithIntegrationID(ctx, id), id)
}
