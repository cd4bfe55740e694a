package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/trailproof/trailproof/internal/testenv"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/server"
)

const (
	testKey    = "AKIACLITESTKEY000001"
	testSecret = "cli-test-secret-do-not-print-0123456789"
)

func writeIntegration(t *testing.T, accessKey, endpoint string) string {
	t.Helper()
	doc := map[string]any{"name": "cli", "awsRegion": "us-east-1", "accessKeyId": accessKey,
		"secretAccessKey": testSecret, "endpoint": endpoint, "timeout": 5}
	b, _ := json.Marshal(doc)
	p := filepath.Join(t.TempDir(), "integration.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCmdTest(t *testing.T) {
	em, err := emulator.New(nil, emulator.WithKeys(emulator.Key{AccessKeyID: testKey, SecretAccessKey: testSecret}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"all pass", []string{"--integration", writeIntegration(t, testKey, srv.URL), "--allow-endpoint", srv.URL}, 0, "All checks passed."},
		{"unknown key", []string{"--integration", writeIntegration(t, "AKIAUNKNOWN000000001", srv.URL), "--allow-endpoint", srv.URL}, 1, "The credentials check failed (UnrecognizedClientException)."},
		{"endpoint not allowed", []string{"--integration", writeIntegration(t, testKey, srv.URL)}, 1, "--allow-endpoint " + strings.TrimPrefix(srv.URL, "http://")},
		{"bad allow-list entry", []string{"--integration", writeIntegration(t, testKey, srv.URL), "--allow-endpoint", "host:notaport"}, 2, "--allow-endpoint"},
		{"no file", []string{"--integration", "/nonexistent/integration.json"}, 2, "cannot read the file"},
		{"no flag", nil, 2, "--integration FILE is required"},
		{"bad format", []string{"--integration", "x.json", "--format", "xml"}, 2, "table or json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := cmdTest(context.Background(), tc.args, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.contains) || strings.Contains(all, testSecret) {
				t.Errorf("output lacks %q or holds the secret:\n%s", tc.contains, all)
			}
		})
	}
	var out bytes.Buffer
	if code := cmdTest(context.Background(), []string{"--integration", writeIntegration(t, testKey, srv.URL), "--format", "json", "--allow-endpoint", srv.URL}, &out, &out); code != 0 {
		t.Fatalf("json: exit %d: %s", code, out.String())
	}
	var rep connectivity.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.OK || len(rep.Checks) != 5 {
		t.Errorf("json report: %v %+v", err, rep)
	}
}

func TestCmdServe(t *testing.T) {
	t.Setenv(envToken, "")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testenv.Buffer
	done := make(chan error, 1)
	go func() { done <- cmdServe(ctx, []string{"--addr", "127.0.0.1:0", "--data", dir}, &out, &errOut) }()
	var url string
	re := regexp.MustCompile(`serving the API at (http://\S+)`)
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("serve did not start:\n%s\n%s", out.String(), errOut.String())
	}
	token, err := server.ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), filepath.Join(dir, "token")) || strings.Contains(out.String()+errOut.String(), token) {
		t.Errorf("serve must print where the token is and never the token:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", url+"/v1/integrations", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET with the token: %v %v", err, resp)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("no stop message: %s", out.String())
	}

	// Beyond loopback over plain HTTP, or with a weak token: bad input, saying what to do.
	t.Setenv(envToken, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
	var e2 bytes.Buffer
	if code := report(&e2, cmdServe(context.Background(), []string{"--addr", "0.0.0.0:0", "--data", t.TempDir()}, &e2, &e2)); code != exitBadInput ||
		!strings.Contains(e2.String(), "--tls-cert") {
		t.Errorf("listen beyond loopback without TLS: exit %d: %s", code, e2.String())
	}
	t.Setenv(envToken, "aaaaaaaaaaaaaaaa")
	e2.Reset()
	if code := report(&e2, cmdServe(context.Background(), []string{"--data", t.TempDir()}, &e2, &e2)); code != exitBadInput ||
		!strings.Contains(e2.String(), "openssl rand -hex 32") {
		t.Errorf("a low-variety token: exit %d: %s", code, e2.String())
	}
}
