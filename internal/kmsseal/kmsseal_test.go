package kmsseal_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/kmsseal"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/store/seal"
)

// fakeKMS encrypts as KMS does for this purpose: the encryption context is authenticated with the
// ciphertext, so decrypting under another context fails. It records the contexts it saw.
type fakeKMS struct {
	aead     cipher.AEAD
	mu       sync.Mutex
	contexts []map[string]string
}

func newFakeKMS(t *testing.T) *fakeKMS {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeKMS{aead: aead}
}

func (f *fakeKMS) record(ec map[string]string) []byte {
	f.mu.Lock()
	f.contexts = append(f.contexts, ec)
	f.mu.Unlock()
	b, _ := json.Marshal(ec) // map keys are sorted: a canonical form
	return b
}

func (f *fakeKMS) Encrypt(_ context.Context, in *kms.EncryptInput, _ ...func(*kms.Options)) (*kms.EncryptOutput, error) {
	nonce := make([]byte, f.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return &kms.EncryptOutput{CiphertextBlob: f.aead.Seal(nonce, nonce, in.Plaintext, f.record(in.EncryptionContext))}, nil
}

func (f *fakeKMS) Decrypt(_ context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	ns := f.aead.NonceSize()
	if len(in.CiphertextBlob) < ns {
		return nil, errors.New("InvalidCiphertextException")
	}
	pt, err := f.aead.Open(nil, in.CiphertextBlob[:ns], in.CiphertextBlob[ns:], f.record(in.EncryptionContext))
	if err != nil {
		return nil, errors.New("InvalidCiphertextException")
	}
	return &kms.DecryptOutput{Plaintext: pt}, nil
}

func TestSealOpen(t *testing.T) {
	f := newFakeKMS(t)
	s, err := kmsseal.New(f, "alias/trailproof")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prod := seal.Binding{IntegrationID: "prod", Field: seal.FieldSecrets}
	ct, err := s.Seal(ctx, []byte("the secret"), prod)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("the secret")) || ct[0] != 'B' {
		t.Fatalf("ciphertext %q", ct)
	}
	if pt, err := s.Open(ctx, ct, prod); err != nil || string(pt) != "the secret" {
		t.Errorf("open: %q %v", pt, err)
	}
	for _, other := range []seal.Binding{{IntegrationID: "other", Field: seal.FieldSecrets}, {IntegrationID: "prod", Field: "other"}} {
		if _, err := s.Open(ctx, ct, other); !errors.Is(err, seal.ErrMoved) {
			t.Errorf("a secret sealed for %v opened as %v: %v, want ErrMoved", prod, other, err)
		}
	}
	// Rewriting the recorded ID changes the encryption context, which KMS refuses.
	other := seal.Binding{IntegrationID: "other", Field: seal.FieldSecrets}
	forged := append([]byte{'B', 0, 5}, append([]byte("other"), ct[3+4:]...)...)
	if _, err := s.Open(ctx, forged, other); err == nil {
		t.Error("a ciphertext moved to another integration opened")
	}
	if _, err := s.Open(ctx, []byte{1, 2, 3}, prod); err == nil {
		t.Error("an AES-GCM ciphertext was taken for a KMS one")
	}
	want := map[string]string{"app": "trailproof", "integrationId": "prod", "field": "secrets"}
	if diff := cmp.Diff(want, f.contexts[0]); diff != "" {
		t.Errorf("encryption context (-want +got):\n%s", diff)
	}
}

// TestOldFormatStillOpens: ciphertexts of the format before the field binding ('K', context
// without field) keep opening for their integration, and only for it.
func TestOldFormatStillOpens(t *testing.T) {
	f := newFakeKMS(t)
	s, _ := kmsseal.New(f, "alias/trailproof")
	ctx := context.Background()
	out, _ := f.Encrypt(ctx, &kms.EncryptInput{Plaintext: []byte("old secret"),
		EncryptionContext: map[string]string{"app": "trailproof", "integrationId": "prod"}})
	old := append([]byte{'K', 0, 4}, append([]byte("prod"), out.CiphertextBlob...)...)
	if pt, err := s.Open(ctx, old, seal.Binding{IntegrationID: "prod", Field: seal.FieldSecrets}); err != nil || string(pt) != "old secret" {
		t.Errorf("old format: %q %v", pt, err)
	}
	if _, err := s.Open(ctx, old, seal.Binding{IntegrationID: "other", Field: seal.FieldSecrets}); !errors.Is(err, seal.ErrMoved) {
		t.Errorf("old format opened for another integration: %v", err)
	}
}

// TestStore: a store sealing with KMS keeps no plain secret and binds each to its integration
// and field; a blob copied into another record does not open.
func TestStore(t *testing.T) {
	f := newFakeKMS(t)
	s, _ := kmsseal.New(f, "alias/trailproof")
	path := filepath.Join(t.TempDir(), "t.db")
	store, err := bolt.Open(path, bolt.WithSealer(s))
	if err != nil {
		t.Fatal(err)
	}
	in := &core.Integration{ID: "prod", Type: core.TypeMSI, Name: "p", AWSRegion: "us-east-1",
		AccessKeyID: "AKIAKMSTEST000000001", SecretAccessKey: "kms-sealed-secret-value"}
	ctx := context.Background()
	if err := store.CreateIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := store.GetIntegration(ctx, "prod")
	if err != nil || got.SecretAccessKey.Reveal() != "kms-sealed-secret-value" {
		t.Fatalf("get: %v", err)
	}
	for _, ec := range f.contexts {
		if ec["integrationId"] != "prod" || ec["field"] != seal.FieldSecrets {
			t.Errorf("KMS called with context %v", ec)
		}
	}
	store.Close()
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("kms-sealed-secret-value")) {
		t.Error("the store file holds the secret in plain text")
	}
}
