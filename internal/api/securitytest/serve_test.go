package securitytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/server"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/store/seal"
)

// TestServeRefusesCleartextAndWeakSecrets: `serve --addr 0.0.0.0` with a token of sixteen a's,
// or over plain HTTP, or on a data folder anyone may write to, does not start.
func TestServeRefusesCleartextAndWeakSecrets(t *testing.T) {
	ctx := context.Background()
	attempts := []struct {
		name  string
		cfg   server.Config
		field string
		says  string
	}{
		{"all interfaces, plain HTTP", server.Config{Addr: "0.0.0.0:0", Token: token}, "addr", "--tls-cert"},
		{"sixteen a's", server.Config{Addr: "127.0.0.1:0", Token: strings.Repeat("a", 16)}, "TRAILPROOF_TOKEN", "openssl rand -hex 32"},
		{"a long repeated pattern", server.Config{Addr: "127.0.0.1:0", Token: strings.Repeat("ab12", 16)}, "TRAILPROOF_TOKEN", "openssl rand -hex 32"},
	}
	for _, at := range attempts {
		t.Run(at.name, func(t *testing.T) {
			at.cfg.DataDir = t.TempDir()
			s, err := server.Start(ctx, at.cfg)
			if err == nil {
				_ = s.Shutdown(ctx)
				t.Fatal("serve started")
			}
			if core.ErrorField(err) != at.field || !strings.Contains(err.Error(), at.says) {
				t.Errorf("refusal %q; want it to name %s and say %q", err, at.field, at.says)
			}
		})
	}
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: open}); core.ErrorField(err) != "data" || !strings.Contains(err.Error(), "chmod") {
		t.Errorf("a 0777 data folder: %v; want a refusal naming data with the chmod", err)
	}
}

// TestSwappedSealedSecretsDoNotOpen: with write access to the store file, moving one
// integration's sealed secrets into another record gets nothing: the blob opens only where it
// was sealed.
func TestSwappedSealedSecretsDoNotOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trailproof.db")
	st, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"victim", "attacker"} {
		doc := `{"name":"n","awsRegion":"us-east-1","accessKeyId":"AKIA` + strings.ToUpper(id) + `0000000001","secretAccessKey":"secret-of-` + id + `"}`
		in, err := core.ParseIntegration([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		in.ID = id
		if err := st.CreateIntegration(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("integrations"))
		var victim, attacker map[string]json.RawMessage
		if err := json.Unmarshal(b.Get([]byte("victim")), &victim); err != nil {
			return err
		}
		if err := json.Unmarshal(b.Get([]byte("attacker")), &attacker); err != nil {
			return err
		}
		attacker["secrets"] = victim["secrets"]
		v, err := json.Marshal(attacker)
		if err != nil {
			return err
		}
		return b.Put([]byte("attacker"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	st, err = bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in, err := st.GetIntegration(ctx, "attacker")
	if err == nil {
		t.Fatalf("the swapped record opened, with the secret %v", in.SecretAccessKey.Reveal() == "secret-of-victim")
	}
	if !errors.Is(err, seal.ErrMoved) || strings.Contains(err.Error(), "secret-of-victim") {
		t.Errorf("error %q; want seal.ErrMoved, without the secret", err)
	}
}
