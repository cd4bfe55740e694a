package awsenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/trailproof/trailproof/internal/kmsseal"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/store/storetest"
	"github.com/trailproof/trailproof/internal/testenv"
)

const testKeyARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// TestSealerChosenOnce: the sealer follows the deployment's choice, whatever else is set: KMS
// when SEAL_KMS_KEY_ARN is (the template sets SEAL_KEY_SECRET_ARN too), else the AES key of the
// secret (read only when first used), else the local key file; with none the error names them.
func TestSealerChosenOnce(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "seal.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(make([]byte, seal.KeySize))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretARN := "arn:aws:secretsmanager:us-east-1:123456789012:secret:SealKeySecret-AbCdEf"
	tests := []struct {
		name, kms, secret, file string
		want                    any
		wantErr                 []string
	}{
		{name: "kms", kms: testKeyARN, secret: secretARN, want: &kmsseal.Sealer{}},
		{name: "secret", secret: secretARN, want: &lazySealer{}},
		{name: "file", file: keyFile, want: &seal.AESGCM{}},
		{name: "none", wantErr: []string{EnvSealKMSKeyARN, EnvSealKeySecretARN, EnvSealKeyFile}},
		{name: "bad file", file: filepath.Join(t.TempDir(), "missing"), wantErr: []string{EnvSealKeyFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvSealKMSKeyARN, tt.kms)
			t.Setenv(EnvSealKeySecretARN, tt.secret)
			t.Setenv(EnvSealKeyFile, tt.file)
			s, err := sealerFromEnv(aws.Config{Region: "us-east-1"})
			if len(tt.wantErr) > 0 {
				for _, w := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v, want one naming %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprintf("%T", s), fmt.Sprintf("%T", tt.want); got != want {
				t.Errorf("sealer %s, want %s", got, want)
			}
		})
	}
}

// TestEnvNamesBadSettings: a missing table or a bad retention stops the cold start with an
// error naming the variable.
func TestEnvNamesBadSettings(t *testing.T) {
	t.Setenv(EnvSealKMSKeyARN, testKeyARN)
	t.Setenv(EnvDynamoDBEndpoint, "http://127.0.0.1:1")
	for _, tc := range []struct{ table, days, want string }{
		{"", "30", EnvTableName},
		{"t", "0", EnvRunRetentionDays},
		{"t", "thirty", EnvRunRetentionDays},
	} {
		t.Setenv(EnvTableName, tc.table)
		t.Setenv(EnvRunRetentionDays, tc.days)
		if _, err := New(t.Context(), aws.Config{Region: "us-east-1"}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TABLE_NAME=%q RUN_RETENTION_DAYS=%q: error %v, want one naming %s", tc.table, tc.days, err, tc.want)
		}
	}
}

// TestKMSSealedOpensInEveryFunction: with SealKmsKeyArn set, what the api function seals the step
// functions open, because both build their store here: an integration stored through one
// function's environment is read back, secrets intact, through another's, with KMS (a stand-in
// speaking its wire protocol) called on the deployment's key and Secrets Manager never.
func TestKMSSealedOpensInEveryFunction(t *testing.T) {
	ep := os.Getenv(EnvDynamoDBEndpoint)
	if ep == "" {
		testenv.Skip(t, "DYNAMODB_ENDPOINT is not set: the test stores an integration in DynamoDB Local (export DYNAMODB_ENDPOINT=http://127.0.0.1:8000)")
	}
	stand := &kmsStandIn{}
	srv := httptest.NewServer(stand)
	t.Cleanup(srv.Close)
	table := "awsenv-" + rand.Text()[:10]
	t.Setenv(EnvTableName, table)
	t.Setenv(EnvRunRetentionDays, "30")
	t.Setenv(EnvSealKMSKeyARN, testKeyARN)
	t.Setenv(EnvSealKeySecretARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:SealKeySecret-AbCdEf")
	t.Setenv(EnvSealKeyFile, "")
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	log := slog.New(slog.DiscardHandler)
	api, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Store.CreateTable(t.Context()); err != nil {
		t.Fatalf("DynamoDB Local at %s: %v", ep, err)
	}
	t.Cleanup(func() {
		_, _ = dynamo.LocalClient(ep).DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	in := storetest.Integration("int-kms")
	if err := api.Store.CreateIntegration(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	fetch, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetch.Store.GetIntegration(t.Context(), in.ID)
	if err != nil {
		t.Fatalf("the step function's store cannot open what the api's sealed: %v", err)
	}
	if got.SecretAccessKey != in.SecretAccessKey || got.SessionToken != in.SessionToken || got.ExternalID != in.ExternalID {
		t.Errorf("secrets read back differ from those stored")
	}
	calls := stand.seen()
	if calls["TrentService.Encrypt"] == 0 || calls["TrentService.Decrypt"] == 0 || len(calls) != 2 {
		t.Errorf("calls %v, want KMS Encrypt and Decrypt only (no Secrets Manager)", calls)
	}
}

// kmsStandIn answers KMS's Encrypt and Decrypt (JSON 1.1 protocol) for testKeyARN only. Its
// "ciphertext" is the plaintext and encryption context in the clear, which is all the test needs:
// Decrypt fails unless the context matches the one sealed with, as KMS's does.
type kmsStandIn struct {
	mu    sync.Mutex
	calls map[string]int
}

type kmsBlob struct {
	Plaintext []byte
	Context   map[string]string
}

func (k *kmsStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	k.mu.Lock()
	if k.calls == nil {
		k.calls = map[string]int{}
	}
	k.calls[target]++
	k.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	var in struct {
		KeyID             string `json:"KeyId"`
		Plaintext         []byte
		CiphertextBlob    []byte
		EncryptionContext map[string]string
	}
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"` + code + `","message":"` + code + `"}`))
	}
	if err := json.Unmarshal(body, &in); err != nil || in.KeyID != testKeyARN {
		fail("NotFoundException")
		return
	}
	var out any
	switch target {
	case "TrentService.Encrypt":
		blob, _ := json.Marshal(kmsBlob{in.Plaintext, in.EncryptionContext})
		out = map[string]any{"KeyId": testKeyARN, "CiphertextBlob": blob}
	case "TrentService.Decrypt":
		var b kmsBlob
		if json.Unmarshal(in.CiphertextBlob, &b) != nil || !maps.Equal(b.Context, in.EncryptionContext) {
			fail("InvalidCiphertextException")
			return
		}
		out = map[string]any{"KeyId": testKeyARN, "Plaintext": b.Plaintext}
	default:
		fail("UnknownOperationException")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func (k *kmsStandIn) seen() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.calls)
}
