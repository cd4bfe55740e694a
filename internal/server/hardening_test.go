package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/server"
)

// strongToken is what `openssl rand -hex 32` prints.
const strongToken = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// TestTokenStrength: explicit tokens below 128 bits, or of few characters or a repeated pattern,
// are refused with how to make a good one.
func TestTokenStrength(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{strings.Repeat("a", 16), false},
		{strings.Repeat("a", 64), false},
		{strings.Repeat("0123456789abcdef", 4), false},
		{"Password1234!", false},
		{"0123456789abcdef0123", false}, // 20 hex characters: 80 bits
		{strongToken, true},
		{"q3V9xK2mT7bW4nR8pL6sY1dF5gH0jZcA", true}, // 32 random base62 characters: 190 bits
	} {
		_, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Token: tc.token})
		switch {
		case tc.ok && err != nil:
			t.Errorf("token %q refused: %v", tc.token, err)
		case !tc.ok && (core.ErrorField(err) != "TRAILPROOF_TOKEN" || !strings.Contains(err.Error(), "openssl rand -hex 32")):
			t.Errorf("token %q: %v; want a refusal naming TRAILPROOF_TOKEN and how to make one", tc.token, err)
		}
	}
}

// TestServeBeyondLoopbackNeedsTLS: off loopback the API is served over TLS only.
func TestServeBeyondLoopbackNeedsTLS(t *testing.T) {
	ctx := context.Background()
	_, err := server.Start(ctx, server.Config{Addr: "0.0.0.0:0", DataDir: t.TempDir(), Token: strongToken})
	if core.ErrorField(err) != "addr" || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("plain HTTP on all interfaces: %v; want a refusal naming addr and --tls-cert", err)
	}
	certFile, keyFile, pool := selfSigned(t)
	if _, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), TLSCert: certFile}); core.ErrorField(err) != "tls-key" {
		t.Errorf("a certificate without its key: %v", err)
	}
	s, err := server.Start(ctx, server.Config{Addr: "0.0.0.0:0", DataDir: t.TempDir(), Token: strongToken, TLSCert: certFile, TLSKey: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, s)
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s is not https", s.URL())
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL(), "https://"))
	base := "https://127.0.0.1:" + port
	c := newClient(t, base, strongToken)
	c.http.Transport = validator.Transport(t, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	c.must(200, c.do("GET", "/v1/integrations", nil), nil)
	// Plain HTTP to the TLS port gets no API answer.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://127.0.0.1:" + port + "/v1/integrations")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener answered %d", resp.StatusCode)
		}
	}
}

// TestDataFolderPermissions: a data folder others may write to, or a store file others may
// read, is refused with the chmod that fixes it; what serve creates is 0600.
func TestDataFolderPermissions(t *testing.T) {
	ctx := context.Background()
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: open}); err == nil || !strings.Contains(err.Error(), "chmod go-w "+open) {
		t.Errorf("a 0777 data folder: %v", err)
	}
	dir := t.TempDir()
	s, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, s)
	for _, name := range []string{server.DBFile, server.DBFile + ".key", server.TokenFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, err %v; want 0600", name, st.Mode().Perm(), err)
		}
	}
	db := filepath.Join(dir, server.DBFile)
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dir}); err == nil || !strings.Contains(err.Error(), "chmod 600 "+db) {
		t.Errorf("a world-readable store: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key (0600), and returns a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trailproof test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
