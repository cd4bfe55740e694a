package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		s, err := Open(filepath.Join(t.TempDir(), "trailproof.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestNoPlainSecretOnDisk greps the raw database file for every secret value stored.
func TestNoPlainSecretOnDisk(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trailproof.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	in := storetest.Integration("int-1")
	secrets := []string{in.SecretAccessKey.Reveal(), in.SessionToken.Reveal(), in.ExternalID.Reveal()}
	if err := s.CreateIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	upd := storetest.Integration("int-1")
	upd.SecretAccessKey = "rotated-SECRETzz-value"
	secrets = append(secrets, upd.SecretAccessKey.Reveal())
	if err := s.UpdateIntegration(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(in.AccessKeyID)) {
		t.Fatalf("the database does not hold the integration at all (access key ID missing): the grep proves nothing")
	}
	for _, sec := range secrets {
		if bytes.Contains(raw, []byte(sec)) {
			t.Errorf("the database file holds the secret %q in plain text", sec)
		}
	}
	if bytes.Contains(raw, []byte("SECRETzz")) {
		t.Errorf("the database file holds part of a secret in plain text")
	}

	// Reopened with the same key file, the secrets are back; with another key they are not.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetIntegration(ctx, "int-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretAccessKey != upd.SecretAccessKey {
		t.Errorf("after reopening, secretAccessKey did not round-trip")
	}
	s.Close()
	other := filepath.Join(t.TempDir(), "other.key")
	s, err = Open(path, WithKeyFile(other))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetIntegration(ctx, "int-1"); err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Errorf("GetIntegration under another key: %v, want a wrong-key error", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trailproof.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	st, err := os.Stat(path + ".key")
	if err != nil {
		t.Fatalf("Open did not create the key file beside the database: %v", err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %04o, want 0600", perm)
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(path+".key", mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path)
		if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), path+".key") {
			t.Errorf("Open with key file mode %04o: %v, want an error naming the file and the fix", mode, err)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "bad.key"), []byte("not base64 at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, WithKeyFile(filepath.Join(dir, "bad.key")))
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "bad.key") {
		t.Errorf("Open with a malformed key file: %v, want EINVALID naming it", err)
	}
}

func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trailproof.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = Open(path, WithLockTimeout(100*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second Open of a file in use: %v, want a locked error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open waited %v", d)
	}
}

// TestMovedSecretsDoNotOpen: one integration's sealed secrets copied into another's record (as
// someone with write access to the file could) do not open there, with an error saying so.
func TestMovedSecretsDoNotOpen(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "trailproof.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.MovedSecrets(t, s, func(context.Context) error {
		return s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketIntegrations)
			var victim, attacker seal.SealedIntegration
			if err := json.Unmarshal(b.Get([]byte("victim")), &victim); err != nil {
				return err
			}
			if err := json.Unmarshal(b.Get([]byte("attacker")), &attacker); err != nil {
				return err
			}
			attacker.Secrets = victim.Secrets
			v, err := json.Marshal(attacker)
			if err != nil {
				return err
			}
			return b.Put([]byte("attacker"), v)
		})
	})
}

// TestLegacyRun reads a run written before runs had a verdict.
func TestLegacyRun(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "trailproof.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.AddRunIntegration(t, s)
	r := storetest.NewRun("old", core.StatusFailed)
	r.Error = "TransientError: boom"
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		return b.Put([]byte("old"), storetest.LegacyRecord(t, b.Get([]byte("old"))))
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckLegacyFailedRun(t, got)
	list, err := s.ListRuns(ctx, core.StatusFailed)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListRuns: %v %v", list, err)
	}
	storetest.CheckLegacyFailedRun(t, list[0])
}
