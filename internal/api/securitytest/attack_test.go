package securitytest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/server"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/testenv/teststack"
)

// The owner's credentials. None of them, nor a SigV4 signature or a session token header, may
// reach the attacker's listener.
const (
	ownerKey      = "AKIAOWNERKEY00000001"
	ownerSecret   = "owner-Secret-Access-Key-0f9e8d7c6b5a"
	ownerToken    = "owner-Session-Token-FQoGZXIvYXdzEJr"
	ownerExternal = "owner-external-id-4711"
	ownerRole     = "arn:aws:iam::123456789012:role/trailproof-reader"
	token         = "attack-suite-bearer-token-6b1d0e9a3c5f7e2d"
)

// listener is the attacker's host: it records every connection and byte it receives.
type listener struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	data  bytes.Buffer
	wg    sync.WaitGroup
}

func newListener(t *testing.T) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{ln: ln}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.conns++
			l.mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				b, _ := io.ReadAll(io.LimitReader(c, 1<<16))
				l.mu.Lock()
				l.data.Write(b)
				l.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); l.wg.Wait() })
	return l
}

func (l *listener) addr() string { return l.ln.Addr().String() }

// assertUntouched fails the test if the listener was connected to, and says what it received
// that matters most: a credential, a signature, a token.
func (l *listener) assertUntouched(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.data.String()
	for _, leak := range []string{ownerSecret, ownerToken, ownerExternal, ownerKey, "AWS4-HMAC-SHA256", "X-Amz-Security-Token", "Signature="} {
		if strings.Contains(got, leak) {
			t.Errorf("the attacker's listener received %q", leak)
		}
	}
	if l.conns != 0 {
		t.Errorf("the attacker's listener was connected to %d times (%d bytes received)", l.conns, len(got))
	}
}

// stack is `trailproof serve`'s API as a deployment runs it: the default policy (credentials go
// to AWS only), the real store, source factory, connectivity test and run executor.
type stack struct {
	t     *testing.T
	url   string
	store *bolt.Store
}

func newStack(t *testing.T) *stack {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	var policy *netguard.Policy // the default: AWS CloudTrail hosts only
	stk := teststack.New(t, log, policy)
	st, eng, sources := stk.Store, stk.Engine, stk.Sources
	runner := server.NewRunner(eng, st, log)
	t.Cleanup(runner.Close)
	h, err := api.New(api.Config{Store: st, Engine: eng, Runs: runner, Auth: api.BearerToken(token), Policy: policy, Logger: log,
		Tester: connectivity.New(connectivity.WithSources(sources), connectivity.WithPolicy(policy), connectivity.WithMaxTimeout(2*time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &stack{t: t, url: srv.URL, store: st}
}

type answer struct {
	status int
	body   []byte
}

func (s *stack) do(method, path string, body any) answer {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b}
}

// refused asserts a 400 whose error names field, and that the answer holds no secret.
func (a answer) refused(t *testing.T, field string) {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(a.body, &e); err != nil || a.status != http.StatusBadRequest || e.Error.Field != field {
		t.Fatalf("answer %d %s; want 400 naming the field %q", a.status, a.body, field)
	}
	for _, s := range []string{ownerSecret, ownerToken, ownerExternal} {
		if strings.Contains(string(a.body), s) {
			t.Errorf("the refusal quotes a secret: %s", a.body)
		}
	}
}

// ownerSettings is what the owner created: keys with a session token, assuming a role with an
// external ID, at AWS's own endpoint.
func ownerSettings() map[string]any {
	return map[string]any{"id": "prod", "name": "production", "awsRegion": "eu-west-1",
		"accessKeyId": ownerKey, "secretAccessKey": ownerSecret, "sessionToken": ownerToken,
		"roleArn": ownerRole, "externalId": ownerExternal}
}

// readBack is what the API answers for the integration: what a caller without the secrets sees,
// and sends back with its changes.
func (s *stack) readBack(id string) map[string]any {
	s.t.Helper()
	a := s.do("GET", "/v1/integrations/"+id, nil)
	var m map[string]any
	if a.status != http.StatusOK || json.Unmarshal(a.body, &m) != nil {
		s.t.Fatalf("GET %s: %d %s", id, a.status, a.body)
	}
	delete(m, "createdAt")
	delete(m, "updatedAt")
	return m
}

func with(base map[string]any, changes map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// TestKeptSecretsCannotBeRedirected: a caller who may edit the owner's integration but does not
// know its secrets changes where they go, sending them back as "********" or leaving them out.
func TestKeptSecretsCannotBeRedirected(t *testing.T) {
	s := newStack(t)
	evil := newListener(t)
	if a := s.do("POST", "/v1/integrations", ownerSettings()); a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	read := s.readBack("prod")
	omitted := with(read, map[string]any{"secretAccessKey": nil, "sessionToken": nil, "externalId": nil})
	attempts := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"endpoint to a listener, secrets as markers", with(read, map[string]any{"endpoint": "http://" + evil.addr()}), "endpoint"},
		{"endpoint to a listener, secrets left out", with(omitted, map[string]any{"endpoint": "https://" + evil.addr()}), "endpoint"},
		{"proxy of the caller's", with(read, map[string]any{"proxy": "http://" + evil.addr()}), "proxy"},
		{"verifySsl off, to be intercepted", with(read, map[string]any{"verifySsl": false}), "verifySsl"},
		{"another role with the stored keys", with(omitted, map[string]any{"roleArn": "arn:aws:iam::999999999999:role/attacker"}), "roleArn"},
		{"another external id with the stored keys", with(omitted, map[string]any{"externalId": "attacker-external-id"}), "externalId"},
		{"another region", with(read, map[string]any{"awsRegion": "us-east-1"}), "awsRegion"},
		{"the legacy form with the stored key", map[string]any{"type": "legacy", "name": "production", "amazonRegion": "eu-west-1",
			"accessKeyId": ownerKey, "secretAccessKey": core.Redacted}, "type"},
		{"new secrets of the caller's at a listener", with(read, map[string]any{"endpoint": "http://" + evil.addr(),
			"secretAccessKey": "attacker-secret", "sessionToken": nil, "externalId": "attacker-external"}), "endpoint"},
	}
	for _, at := range attempts {
		t.Run(at.name, func(t *testing.T) {
			s.do("PUT", "/v1/integrations/prod", at.body).refused(t, at.field)
		})
	}
	// Nothing changed: the stored integration still points at AWS with the owner's secrets.
	in, err := s.store.GetIntegration(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if in.Endpoint != "" || in.Proxy != "" || !in.VerifySSL || in.SecretAccessKey.Reveal() != ownerSecret || in.RoleARN != ownerRole {
		t.Errorf("an attempt changed the stored integration: %+v", in.Redact())
	}
	evil.assertUntouched(t)
}

// TestHostCredentialsStayWithAWS: an integration without keys is signed with the host's own
// credentials (the Lambda role when deployed); pointing it elsewhere is refused, at save time.
func TestHostCredentialsStayWithAWS(t *testing.T) {
	s := newStack(t)
	evil := newListener(t)
	noKeys := map[string]any{"id": "hostcreds", "name": "host credentials", "awsRegion": "eu-west-1"}
	if a := s.do("POST", "/v1/integrations", noKeys); a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	s.do("PUT", "/v1/integrations/hostcreds", with(noKeys, map[string]any{"endpoint": "http://" + evil.addr()})).refused(t, "endpoint")
	s.do("PUT", "/v1/integrations/hostcreds", with(noKeys, map[string]any{"roleArn": ownerRole, "proxy": "http://" + evil.addr()})).refused(t, "proxy")
	s.do("POST", "/v1/integrations", with(noKeys, map[string]any{"id": "other", "endpoint": "https://" + evil.addr()})).refused(t, "endpoint")
	evil.assertUntouched(t)
}

// TestNoNetworkOracle: the server must not probe addresses for a caller, at save time nor when a
// connectivity test or a run connects.
func TestNoNetworkOracle(t *testing.T) {
	s := newStack(t)
	evil := newListener(t)
	base := map[string]any{"name": "probe", "awsRegion": "us-east-1", "accessKeyId": "AKIAPROBE00000000001", "secretAccessKey": "probe-secret"}
	for i, target := range []struct{ field, url string }{
		{"endpoint", "http://169.254.169.254"},
		{"endpoint", "http://" + evil.addr()},
		{"endpoint", "https://10.0.0.1:8443"},
		{"endpoint", "http://[::1]:22"},
		{"endpoint", "https://cloudtrail.us-east-1.amazonaws.com.attacker.example"},
		{"proxy", "http://" + evil.addr()},
	} {
		body := with(base, map[string]any{"id": "probe-" + string(rune('a'+i)), target.field: target.url})
		s.do("POST", "/v1/integrations", body).refused(t, target.field)
	}

	// Settings saved before the operator narrowed the policy (planted in the store here) are
	// checked again where the connection is made: by the connectivity test and by a run.
	for _, planted := range []*core.Integration{
		{ID: "planted-endpoint", Endpoint: "http://" + evil.addr()},
		{ID: "planted-proxy", Proxy: "http://" + evil.addr(), RoleARN: ownerRole, ExternalID: ownerExternal},
		{ID: "planted-insecure", Endpoint: "https://" + evil.addr(), VerifySSL: false},
	} {
		in, err := core.ParseIntegration([]byte(`{"name":"planted","awsRegion":"us-east-1"}`))
		if err != nil {
			t.Fatal(err)
		}
		in.ID, in.Endpoint, in.Proxy, in.RoleARN, in.ExternalID = planted.ID, planted.Endpoint, planted.Proxy, planted.RoleARN, planted.ExternalID
		in.AccessKeyID, in.SecretAccessKey, in.SessionToken = ownerKey, ownerSecret, ownerToken
		in.VerifySSL = planted.ID != "planted-insecure"
		if err := s.store.CreateIntegration(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		t.Run(planted.ID, func(t *testing.T) {
			a := s.do("POST", "/v1/integrations/"+in.ID+"/test", nil)
			var rep connectivity.Report
			if a.status != http.StatusOK || json.Unmarshal(a.body, &rep) != nil {
				t.Fatalf("test: %d %s", a.status, a.body)
			}
			if f := rep.Failed(); rep.OK || f == nil || f.Name != connectivity.CheckEndpoint || f.Code != "NotAllowed" || f.Remedy == "" {
				t.Errorf("the connectivity test did not stop at the policy: %s", a.body)
			}
			if strings.Contains(string(a.body), ownerSecret) {
				t.Errorf("the report holds a secret")
			}
			action := map[string]any{"jobId": "j", "actionId": "a", "startTime": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339),
				"actor": map[string]any{"userAgentToken": "probe"}}
			a = s.do("POST", "/v1/integrations/"+in.ID+"/runs", action)
			var run core.Run
			if a.status != http.StatusAccepted || json.Unmarshal(a.body, &run) != nil {
				t.Fatalf("start run: %d %s", a.status, a.body)
			}
			deadline := time.Now().Add(10 * time.Second)
			for run.Status != core.StatusFailed && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				_ = json.Unmarshal(s.do("GET", "/v1/runs/"+run.RunID, nil).body, &run)
			}
			field := map[string]string{"planted-endpoint": "endpoint", "planted-proxy": "proxy", "planted-insecure": "endpoint"}[in.ID]
			if run.Status != core.StatusFailed || run.Verdict != core.VerdictUnknown || run.Logged != nil || !strings.Contains(run.Error, field) {
				t.Errorf("run %s: status %s, verdict %s, error %q; want failed, unknown, naming %s", run.RunID, run.Status, run.Verdict, run.Error, field)
			}
		})
	}
	evil.assertUntouched(t)
}
