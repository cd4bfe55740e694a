package cloudtrail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// TestAccountRetriesTemporaryFailures: a GetCallerIdentity that failed in a way that may pass
// (STS throttling, STS's 5xx, a dropped connection) is not kept for the Source's life, as a
// long-running serve keeps its sources: the next call asks again and learns the account. A
// failure only a change of settings cures (a key STS does not know) is kept: asked once. Each
// failure comes classified (core.Temporary says whether asking again may help).
func TestAccountRetriesTemporaryFailures(t *testing.T) {
	emu, err := emulator.New(nil, emulator.WithKeys(
		emulator.Key{AccessKeyID: testKeyID, SecretAccessKey: core.Secret(testSecret), AccountID: "123456789012"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		fail      func(w http.ResponseWriter)
		key       string
		wantCode  string // core code of the first failure
		wantAsks  int    // requests STS sees over three calls
		wantLater string // the account the later calls learn ("": they fail too)
	}{
		{"throttled", func(w http.ResponseWriter) { stsError(w, http.StatusBadRequest, "Throttling", "Rate exceeded") },
			testKeyID, core.ETHROTTLED, 2, "123456789012"},
		{"STS 5xx", func(w http.ResponseWriter) {
			stsError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "try later")
		},
			testKeyID, core.ETRANSIENT, 2, "123456789012"},
		{"connection dropped", func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, testKeyID, core.ETRANSIENT, 2, "123456789012"},
		{"unknown key", nil, "AKIAUNKNOWN000000001", core.EDENIED, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			asks := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				asks++
				first := asks == 1
				mu.Unlock()
				if first && tt.fail != nil {
					tt.fail(w)
					return
				}
				emu.ServeHTTP(w, r)
			}))
			defer srv.Close()
			in := integration(srv.URL)
			in.AccessKeyID, in.SecretAccessKey = tt.key, core.Secret(testSecret)
			src := mustSource(t, testFactory(clock.Real{}), in).(*Source)
			_, err := src.Account(context.Background())
			var ae *AccountError
			if !errors.As(err, &ae) || core.ErrorCode(err) != tt.wantCode {
				t.Fatalf("first Account: %v (code %s), want an *AccountError coded %s", err, core.ErrorCode(err), tt.wantCode)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("the error shows the secret: %v", err)
			}
			for range 2 {
				got, err := src.Account(context.Background())
				if tt.wantLater == "" {
					if err == nil {
						t.Fatalf("later Account = %q, want the failure again", got)
					}
					continue
				}
				if err != nil || got != tt.wantLater {
					t.Fatalf("later Account = %q, %v; want %s", got, err, tt.wantLater)
				}
			}
			if asks != tt.wantAsks {
				t.Errorf("STS was asked %d times, want %d", asks, tt.wantAsks)
			}
		})
	}
}

// stsError answers as STS does when it refuses a call.
func stsError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`, code, message)
}
