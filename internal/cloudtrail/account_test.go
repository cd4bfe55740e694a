package cloudtrail

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
)

// TestAccount: the account of the integration's keys comes from sts:GetCallerIdentity, asked at
// the integration's own endpoint (the emulator, which answers it as strictly as STS: signed, by a
// key it knows, with that key's account); a key STS does not know, or a wrong secret, is an error.
func TestAccount(t *testing.T) {
	emu, err := emulator.New(nil, emulator.WithKeys(
		emulator.Key{AccessKeyID: testKeyID, SecretAccessKey: core.Secret(testSecret), AccountID: "123456789012"},
		emulator.Key{AccessKeyID: "AKIANOACCOUNT0000001", SecretAccessKey: "no-account-secret-0001"}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	tests := []struct {
		name, key, secret string
		want, wantErr     string
	}{
		{"known key", testKeyID, testSecret, "123456789012", ""},
		{"wrong secret", testKeyID, "not-the-secret", "", "SignatureDoesNotMatch"},
		{"unknown key", "AKIAUNKNOWN000000001", "unknown-key-secret-0001", "", "InvalidClientTokenId"},
		{"key without an account", "AKIANOACCOUNT0000001", "no-account-secret-0001", "", "InvalidClientTokenId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := integration(srv.URL)
			in.AccessKeyID, in.SecretAccessKey = tt.key, core.Secret(tt.secret)
			src := mustSource(t, testFactory(clock.Real{}), in).(*Source)
			got, err := src.Account(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Account = %q, %v; want an error with %s", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), tt.secret) {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Account = %q, %v; want %s", got, err, tt.want)
			}
		})
	}
	if got := emu.Stats().CallerIdentity; got != 1 {
		t.Errorf("GetCallerIdentity answered %d times, want 1", got)
	}
}
