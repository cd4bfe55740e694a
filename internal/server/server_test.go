package server_test

import (
	"context"
	"fmt"
	"github.com/trailproof/trailproof/internal/testenv"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/connectivity/conntest"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/server"
)

func settings(id, endpoint string) map[string]any {
	return map[string]any{"id": id, "name": "account " + id, "awsRegion": "us-east-1", "accessKeyId": accessKey,
		"secretAccessKey": secret, "endpoint": endpoint, "timeout": 5,
		"queryTime": 1, "queryInterval": 5, "settleTime": 0, "delayTime": 0}
}

func findTechnique(t *testing.T, all []technique, suffix string) technique {
	for _, tq := range all {
		if strings.HasSuffix(tq.name, suffix) {
			return tq
		}
	}
	t.Fatalf("technique %s not in the shared data", suffix)
	return technique{}
}

// TestFlow drives the whole flow over HTTP against a real server and the emulator on a real
// clock: integrations in both forms, the connectivity test passing and failing each way, a run
// polled to completion with its matched events, a cancelled run, and a restart mid-run.
func TestFlow(t *testing.T) {
	techniques := loadTechniques(t)
	tq := findTechnique(t, techniques, "ec2-get-password-data")
	now := time.Now().UTC().Truncate(time.Second)
	// The detonation, re-timed to have happened in the last 20 seconds.
	_, emuURL := startEmulator(t, retime(t, tq.records, now.Add(-20*time.Second)))

	dir := t.TempDir()
	logs := &testenv.Buffer{}
	srv, c := startServer(t, dir, logs)
	serverUp := true
	defer func() {
		if serverUp {
			shutdown(t, srv)
		}
	}()
	if st, err := os.Stat(filepath.Join(dir, server.TokenFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, server.DBFile+".key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seal key file: %v", err)
	}

	t.Run("integrations in both forms", func(t *testing.T) {
		var in core.Integration
		c.must(201, c.do("POST", "/v1/integrations", settings("main", emuURL)), &in)
		c.must(201, c.do("POST", "/v1/integrations", `{"type": "legacy", "id": "legacy-1", "name": "legacy", "accessKeyId": "`+accessKey+
			`", "secretAccessKey": "`+secret+`", "amazonRegion": "us-east-1", "queryTime": 5, "delayTime": 0, "discoverNetworkDevices": true,
			"queryInterval": 30, "eventTimeAdjustment": 0, "saveSuspiciousEvents": false}`), &in)
		if in.Type != core.TypeLegacy || in.AWSRegion != "us-east-1" {
			t.Errorf("legacy integration: %+v", in)
		}
		r := c.do("GET", "/v1/integrations/main", nil)
		c.must(200, r, &in)
		if in.SecretAccessKey.Reveal() != core.Redacted || strings.Contains(string(r.body), secret) {
			t.Errorf("the secret is not redacted: %s", r.body)
		}
	})

	t.Run("connectivity test", func(t *testing.T) {
		var rep connectivity.Report
		c.must(200, c.do("POST", "/v1/integrations/main/test", nil), &rep)
		if !rep.OK || !strings.Contains(rep.Checks[4].Message, "read the latest event") {
			t.Fatalf("test of a good integration: %+v", rep)
		}
		tlsEmu := newTLSEmulator(t)
		closed, _ := conntest.ClosedPort()
		failures := []struct {
			name   string
			change func(map[string]any)
			check  string
			code   string
		}{
			{"unknown key", func(s map[string]any) { s["accessKeyId"] = "AKIANOBODYKNOWS00001" }, "credentials", "UnrecognizedClientException"},
			{"bad signature", func(s map[string]any) { s["secretAccessKey"] = "not-the-secret-of-this-key" }, "credentials", "InvalidSignatureException"},
			{"expired token", func(s map[string]any) { s["sessionToken"] = conntest.ExpiredToken }, "credentials", "ExpiredTokenException"},
			{"no permission", func(s map[string]any) { s["accessKeyId"] = deniedKey }, "permission", "AccessDeniedException"},
			{"unreachable port", func(s map[string]any) { s["endpoint"] = "http://" + closed }, "endpoint", "ConnectionFailed"},
			{"bad DNS name", func(s map[string]any) { s["endpoint"] = "https://cloudtrail.nowhere.invalid" }, "endpoint", "DNSFailure"},
			{"self-signed TLS under verifySsl", func(s map[string]any) { s["endpoint"] = tlsEmu }, "endpoint", "TLSVerificationFailed"},
		}
		for i, f := range failures {
			t.Run(f.name, func(t *testing.T) {
				id := fmt.Sprintf("fail-%d", i)
				s := settings(id, emuURL)
				f.change(s)
				c.must(201, c.do("POST", "/v1/integrations", s), nil)
				var rep connectivity.Report
				c.must(200, c.do("POST", "/v1/integrations/"+id+"/test", nil), &rep)
				bad := rep.Failed()
				if rep.OK || bad == nil || bad.Name != f.check || bad.Code != f.code || bad.Remedy == "" {
					t.Fatalf("want %s failed with %s, got %+v", f.check, f.code, rep.Checks)
				}
				c.must(204, c.do("DELETE", "/v1/integrations/"+id, nil), nil)
			})
		}
	})

	actionFor := func(start time.Time, expected ...string) map[string]any {
		return map[string]any{"jobId": "job-42", "actionId": "A104-123", "startTime": start.Format(time.RFC3339),
			"actor": map[string]any{"userAgentToken": tq.userAgent}, "expectedEvents": expected}
	}

	t.Run("run to completion", func(t *testing.T) {
		body := actionFor(now, "ec2:GetPasswordData", "sts:AssumeRole")
		body["runId"] = "run-complete"
		var started api.RunView
		c.must(202, c.do("POST", "/v1/integrations/main/runs", body), &started)
		if started.Status != core.StatusWaiting {
			t.Errorf("a new run is %s", started.Status)
		}
		run := c.waitRun("run-complete", 30*time.Second, core.StatusCompleted, core.StatusFailed)
		if run.Status != core.StatusCompleted || run.Verdict != core.VerdictLogged || !run.IsLogged() {
			t.Fatalf("run ended %s (verdict %s, error %q)", run.Status, run.Verdict, run.Error)
		}
		if want := tq.matching(); len(run.Events) != want || run.Page.Total != want {
			t.Errorf("matched %d events (page total %d), want the %d of the detonation", len(run.Events), run.Page.Total, want)
		}
		for _, e := range run.Expected {
			if e.Count == 0 {
				t.Errorf("expected event %s not matched", e.Event)
			}
		}
		for _, e := range run.Events {
			if len(e.MatchedOn) == 0 || e.EventID == "" {
				t.Errorf("event %+v lacks its match", e.EventID)
			}
		}
		t.Logf("completed in %d queries, %d LookupEvents calls (%d throttled), %s", run.Queries, run.APICalls, run.Throttled, run.CompletedAt.Sub(run.StartedAt))
		var sensors api.SensorList
		c.must(200, c.do("GET", "/v1/integrations/main/sensors", nil), &sensors)
		if len(sensors.Sensors) == 0 || len(run.Sensors) == 0 {
			t.Errorf("no sensor recorded for the account and region read (integration %d, run %d)", len(sensors.Sensors), len(run.Sensors))
		}
	})

	t.Run("cancel", func(t *testing.T) {
		body := actionFor(now, "ec2:NeverHappens")
		body["runId"] = "run-cancel"
		c.must(202, c.do("POST", "/v1/integrations/main/runs", body), nil)
		var run api.RunView
		c.must(200, c.do("DELETE", "/v1/runs/run-cancel", nil), &run)
		if run.Status != core.StatusCancelled {
			t.Fatalf("cancelled run is %s", run.Status)
		}
		time.Sleep(time.Second)
		c.must(200, c.do("GET", "/v1/runs/run-cancel", nil), &run)
		if run.Status != core.StatusCancelled {
			t.Errorf("a cancelled run became %s", run.Status)
		}
		c.must(422, c.do("DELETE", "/v1/runs/run-cancel", nil), nil)
	})

	t.Run("restart mid-run", func(t *testing.T) {
		// The window ends ~20 s from now and one expected event never comes: the run queries every
		// 5 s until then.
		start := time.Now().UTC().Add(-40 * time.Second).Truncate(time.Second)
		body := actionFor(start, "ec2:GetPasswordData", "ec2:NeverHappens")
		body["runId"] = "run-restart"
		c.must(202, c.do("POST", "/v1/integrations/main/runs", body), nil)
		before := c.waitRun("run-restart", 15*time.Second, core.StatusQuerying)
		shutdown(t, srv)
		serverUp = false
		token := c.token

		srv2, c2 := startServer(t, dir, logs)
		srv, serverUp, c = srv2, true, c2
		if c2.token != token {
			t.Errorf("the token changed across a restart")
		}
		if srv2.Resumed() != 1 {
			t.Errorf("resumed %d runs, want 1 (the one querying)", srv2.Resumed())
		}
		run := c2.waitRun("run-restart", 45*time.Second, core.StatusCompleted, core.StatusFailed)
		if run.Status != core.StatusCompleted || run.Queries <= before.Queries || !run.IsLogged() || len(run.Events) != tq.matching() {
			t.Fatalf("after the restart: %s, %d queries (before %d), %d events, error %q", run.Status, run.Queries, before.Queries, len(run.Events), run.Error)
		}
		for _, e := range run.Expected {
			if (e.Event == "ec2:NeverHappens") != (e.Count == 0) {
				t.Errorf("expected %s counted %d", e.Event, e.Count)
			}
		}
		t.Logf("run-restart: %d queries before the restart, %d in all", before.Queries, run.Queries)
	})

	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), c.token) {
		t.Errorf("the server logged a secret or its token")
	}
}

// newTLSEmulator serves an emulator behind a self-signed certificate.
func newTLSEmulator(t *testing.T) string {
	em, err := emulator.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(em)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLoad starts 50 runs at once against one server and one emulator with one access key, on a
// real clock, and checks that every run completes with its own events, that no answer is a 5xx,
// and that the emulator never saw more than LookupEvents' 2 calls a second for the key.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: about 30 s on a real clock")
	}
	techniques := loadTechniques(t)
	const runs = 50
	// Each detonation gets its own five minutes in the recent past, so each run's window holds
	// only its own records.
	now := time.Now().UTC().Truncate(time.Second)
	base := now.Add(-time.Duration(len(techniques)+2) * 5 * time.Minute)
	var all []core.RawEvent
	slots := make([]time.Time, len(techniques))
	for i, tq := range techniques {
		slots[i] = base.Add(time.Duration(i) * 5 * time.Minute)
		all = append(all, retime(t, tq.records, slots[i])...)
	}
	em, emuURL := startEmulator(t, all)
	srv, c := startServer(t, t.TempDir(), &testenv.Buffer{})
	defer shutdown(t, srv)
	s := settings("load", emuURL)
	s["queryTime"] = 2
	c.must(201, c.do("POST", "/v1/integrations", s), nil)

	start := time.Now()
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tq := techniques[i%len(techniques)]
			body := map[string]any{"runId": fmt.Sprintf("load-%02d", i), "jobId": fmt.Sprintf("job-%d", i), "actionId": tq.name,
				"startTime": slots[i%len(techniques)].Add(30 * time.Second).Format(time.RFC3339),
				"actor":     map[string]any{"userAgentToken": tq.userAgent}, "expectedEvents": tq.expected}
			if r := c.do("POST", "/v1/integrations/load/runs", body); r.status != 202 {
				t.Errorf("start run %d: %d %s", i, r.status, r.body)
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)

	deadline := time.Now().Add(90 * time.Second)
	done := map[int]*api.RunView{}
	for len(done) < runs && time.Now().Before(deadline) {
		for i := range runs {
			if done[i] != nil {
				continue
			}
			var run api.RunView
			c.must(200, c.do("GET", fmt.Sprintf("/v1/runs/load-%02d?limit=1", i), nil), &run)
			if core.Ended(run.Status) {
				c.must(200, c.do("GET", fmt.Sprintf("/v1/runs/load-%02d?limit=1000", i), nil), &run)
				done[i] = &run
			}
		}
		time.Sleep(time.Second)
	}
	elapsed := time.Since(start)
	if len(done) < runs {
		t.Fatalf("%d of %d runs ended within 90 s", len(done), runs)
	}
	calls := 0
	for i := range runs {
		run, tq := done[i], techniques[i%len(techniques)]
		calls += run.APICalls
		if run.Status != core.StatusCompleted || !run.IsLogged() || len(run.Events) != tq.matching() {
			t.Errorf("run %d (%s): %s, verdict %s, %d events, want %d (error %q)", i, tq.name, run.Status, run.Verdict, len(run.Events), tq.matching(), run.Error)
			continue
		}
		for _, e := range run.Events {
			if !strings.Contains(e.UserAgent, tq.userAgent) {
				t.Errorf("run %d matched another detonation's event %s", i, e.EventID)
			}
		}
	}
	for code, n := range c.statuses {
		if code >= 500 {
			t.Errorf("%d answers with status %d", n, code)
		}
	}
	m1, m2 := lastArrivals.gaps()
	t.Logf("arrival gaps: min one-interval %s, min two-interval %s", m1, m2)
	st := em.Stats()
	for kr, ks := range st.PerKey {
		t.Logf("emulator key %s region %s: %d calls, %d throttled, at most %d in one second", kr.AccessKeyID, kr.Region, ks.Calls, ks.Throttled, ks.MaxPerSecond)
	}
	// The limiter (2 calls a second, burst 1) grants at most 1 + 2w calls in any window w. A call
	// reaches the emulator some time after its grant (scheduling on a busy machine): counting
	// arrivals in one second cannot hold to 2, but over 10 s, with up to 1 s of such delay, at
	// most 1 + 2 x (10 + 1) = 23 calls arrive.
	const window, delay = 10 * time.Second, time.Second
	limit := 1 + int(2*(window+delay).Seconds())
	for budget, n := range lastArrivals.maxIn(window) {
		t.Logf("budget %s: at most %d calls in %s", budget, n, window)
		if n > limit {
			t.Errorf("budget %s: %d calls arrived within %s, over the limiter's %d", budget, n, window, limit)
		}
	}
	if len(lastArrivals.maxIn(window)) == 0 {
		t.Errorf("no signed LookupEvents call reached the emulator")
	}
	t.Logf("%d runs accepted in %s, all ended in %s; %d LookupEvents calls (%.2f/s), emulator: %d calls, %d throttled",
		runs, accepted.Round(time.Millisecond), elapsed.Round(time.Millisecond), calls, float64(calls)/elapsed.Seconds(), st.Calls, st.ThrottledRate)
}

// TestListenRules: the created token allows loopback only; an explicit one (with TLS) allows more.
func TestListenRules(t *testing.T) {
	ctx := context.Background()
	certFile, keyFile, _ := selfSigned(t)
	_, err := server.Start(ctx, server.Config{Addr: "0.0.0.0:0", DataDir: t.TempDir(), TLSCert: certFile, TLSKey: keyFile})
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "TRAILPROOF_TOKEN") {
		t.Errorf("listening on all interfaces without a token: %v", err)
	}
	_, err = server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Token: "short"})
	if core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "openssl rand") {
		t.Errorf("a short explicit token: %v", err)
	}
	dir := t.TempDir()
	s, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dir, Token: strongToken})
	if err != nil {
		t.Fatal(err)
	}
	if s.TokenFile() != "" {
		t.Errorf("an explicit token was written to %s", s.TokenFile())
	}
	if _, err := os.Stat(filepath.Join(dir, server.TokenFile)); !os.IsNotExist(err) {
		t.Errorf("token file made with an explicit token: %v", err)
	}
	c := newClient(t, s.URL(), strongToken)
	c.must(200, c.do("GET", "/v1/integrations", nil), nil)
	c.token = "wrong-token-of-enough-length"
	c.must(401, c.do("GET", "/v1/integrations", nil), nil)
	shutdown(t, s)

	// A token file others may read is refused.
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, server.TokenFile), []byte("a-token-readable-by-everyone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: dir}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable token file: %v", err)
	}
}
