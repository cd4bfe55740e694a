package seal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

func sealer(t *testing.T, b byte) *AESGCM {
	t.Helper()
	s, err := NewAESGCM(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAESGCM(t *testing.T) {
	ctx := context.Background()
	s := sealer(t, 1)
	plain := []byte("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	where := Binding{IntegrationID: "prod", Field: FieldSecrets}
	c1, err := s.Seal(ctx, plain, where)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := s.Seal(ctx, plain, where)
	if bytes.Equal(c1, c2) {
		t.Errorf("two seals of one secret are equal: the nonce is not fresh")
	}
	if bytes.Contains(c1, plain) {
		t.Errorf("the ciphertext holds the plaintext")
	}
	got, err := s.Open(ctx, c1, where)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	tampered := bytes.Clone(c1)
	tampered[len(tampered)-1] ^= 1
	for name, c := range map[string][]byte{
		"tampered": tampered, "truncated": c1[:10], "empty": nil, "unknown format": append([]byte{9}, c1[1:]...),
	} {
		if _, err := s.Open(ctx, c, where); err == nil {
			t.Errorf("Open of a %s ciphertext succeeded", name)
		}
	}
	if _, err := sealer(t, 2).Open(ctx, c1, where); err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Errorf("Open under another key: %v, want a wrong-key error", err)
	}
	if _, err := NewAESGCM(make([]byte, 16)); err == nil {
		t.Errorf("NewAESGCM accepted a 16-byte key")
	}
}

func TestSealIntegration(t *testing.T) {
	ctx := context.Background()
	s := sealer(t, 3)
	in := &core.Integration{ID: "i1", Type: core.TypeMSI, Name: "prod", AWSRegion: "eu-west-1",
		AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret-key-value", ExternalID: "external-value"}
	sealed, err := SealIntegration(ctx, s, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"secret-key-value", "external-value"} {
		if bytes.Contains(sealed.Settings, []byte(v)) || bytes.Contains(sealed.Secrets, []byte(v)) {
			t.Errorf("sealed integration holds %q in plain text", v)
		}
	}
	revealed, err := sealed.Integration(ctx, s, "i1", true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, revealed); diff != "" {
		t.Errorf("revealed integration (-want +got):\n%s", diff)
	}
	redacted, err := sealed.Integration(ctx, s, "i1", false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in.Redact(), redacted); diff != "" {
		t.Errorf("redacted integration (-want +got):\n%s", diff)
	}

	none, err := SealIntegration(ctx, s, &core.Integration{ID: "i2", RoleARN: "arn:aws:iam::1:role/r"})
	if err != nil || none.Secrets != nil {
		t.Errorf("an integration without secrets sealed %d bytes (%v)", len(none.Secrets), err)
	}
}

// TestSealBinding: a sealed value opens only where it was sealed for; a blob or a whole record
// moved to another integration, or a blob read as another field, fails with ErrMoved.
func TestSealBinding(t *testing.T) {
	ctx := context.Background()
	s := sealer(t, 4)
	a := &core.Integration{ID: "victim", Name: "a", AccessKeyID: "AKIAVICTIM", SecretAccessKey: "victim-secret"}
	b := &core.Integration{ID: "attacker", Name: "b", AccessKeyID: "AKIAATTACKER", SecretAccessKey: "attacker-secret"}
	sa, err := SealIntegration(ctx, s, a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := SealIntegration(ctx, s, b)
	if err != nil {
		t.Fatal(err)
	}
	swapped := &SealedIntegration{Settings: sb.Settings, Secrets: sa.Secrets} // the victim's blob in the attacker's record
	if _, err := swapped.Integration(ctx, s, "attacker", true); !errors.Is(err, ErrMoved) || !strings.Contains(err.Error(), "attacker") {
		t.Errorf("a blob moved to another record: %v, want ErrMoved naming the record", err)
	}
	if _, err := sa.Integration(ctx, s, "attacker", true); !errors.Is(err, ErrMoved) {
		t.Errorf("a whole record moved under another key: %v, want ErrMoved", err)
	}
	if _, err := s.Open(ctx, sa.Secrets, Binding{IntegrationID: "victim", Field: "other"}); !errors.Is(err, ErrMoved) {
		t.Errorf("a blob read as another field: %v, want ErrMoved", err)
	}
	if in, err := sa.Integration(ctx, s, "victim", true); err != nil || in.SecretAccessKey.Reveal() != "victim-secret" {
		t.Errorf("the record where it belongs: %v", err)
	}
}

// TestSealFormatV1StillOpens: values sealed before the binding (version 1, additional data the
// version byte alone) keep opening; they are sealed as version 2 when next written.
func TestSealFormatV1StillOpens(t *testing.T) {
	ctx := context.Background()
	s := sealer(t, 5)
	plain, _ := json.Marshal(secrets{SecretAccessKey: "old-secret"})
	ns := s.aead.NonceSize()
	v1 := make([]byte, 1+ns)
	v1[0] = formatV1
	v1 = s.aead.Seal(v1, v1[1:1+ns], plain, v1[:1]) // the v1 layout, as the earlier Seal wrote it
	settings, _ := json.Marshal(&core.Integration{ID: "legacy-record", Name: "old"})
	old := &SealedIntegration{Settings: settings, Secrets: v1}
	in, err := old.Integration(ctx, s, "legacy-record", true)
	if err != nil || in.SecretAccessKey.Reveal() != "old-secret" {
		t.Fatalf("a v1 value: %v", err)
	}
	resealed, err := SealIntegration(ctx, s, in)
	if err != nil || resealed.Secrets[0] != formatV2 {
		t.Fatalf("re-sealed as version %d (%v), want %d", resealed.Secrets[0], err, formatV2)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load gave another key (%v)", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "0644") {
		t.Errorf("world-readable key file: %v, want EINVALID naming the mode", err)
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("LoadKey of a missing file succeeded")
	}
}
