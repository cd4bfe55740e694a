package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/api/apitest"
	"github.com/trailproof/trailproof/internal/connectivity/conntest"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/server"
	"github.com/trailproof/trailproof/internal/testenv"
)

const (
	accessKey = "AKIASERVETEST0000001"
	deniedKey = "AKIASERVEDENIED00001"
	secret    = "serve-test-secret-9d8c7b6a5f4e3d2c1b0a"
)

// technique is one Stratus Red Team detonation: its real records and what identifies them.
type technique struct {
	name      string
	records   []core.RawEvent
	userAgent string   // the stratus-red-team_<uuid> token of the detonation
	expected  []string // its event names, as "service:Name"
}

// loadTechniques reads the Stratus detonations and their ground truth from ../shared.
func loadTechniques(t testing.TB) []technique {
	t.Helper()
	dir := testenv.SharedData(t, "stratus-red-team", "docs", "detonation-logs")
	truthFile := testenv.SharedData(t, "stratus-red-team", "stratus_ground_truth.json")
	data, err := os.ReadFile(truthFile)
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]struct {
		Events     [][2]any       `json:"events"`
		UserAgents map[string]int `json:"userAgents"`
	}
	if err := json.Unmarshal(data, &truth); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(truth))
	for n := range truth {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []technique
	for _, n := range names {
		evs, err := corpus.Load(filepath.Join(dir, n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		tq := technique{name: n, records: evs}
		for ua := range truth[n].UserAgents {
			if strings.HasPrefix(ua, "stratus-red-team_") {
				tq.userAgent = ua
			}
		}
		for _, e := range truth[n].Events {
			tq.expected = append(tq.expected, e[0].(string))
		}
		out = append(out, tq)
	}
	return out
}

// retime moves records so that the earliest is at anchor, keeping their spacing; the record's own
// eventTime moves too, and the envelope is derived again from it.
func retime(t testing.TB, evs []core.RawEvent, anchor time.Time) []core.RawEvent {
	t.Helper()
	first := evs[0].EventTime
	for _, e := range evs {
		if e.EventTime.Before(first) {
			first = e.EventTime
		}
	}
	shift := anchor.Sub(first)
	out := make([]core.RawEvent, len(evs))
	for i, e := range evs {
		var rec map[string]any
		if err := json.Unmarshal(e.Record, &rec); err != nil {
			t.Fatal(err)
		}
		e.EventTime = e.EventTime.Add(shift).UTC()
		rec["eventTime"] = e.EventTime.Format(time.RFC3339)
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		e.Record, e.Envelope = b, nil
		out[i] = e
	}
	return out
}

// matching counts the records the technique's user agent token marks.
func (tq technique) matching() int {
	n := 0
	for _, e := range tq.records {
		var rec struct {
			UserAgent string `json:"userAgent"`
		}
		_ = json.Unmarshal(e.Record, &rec)
		if strings.Contains(rec.UserAgent, tq.userAgent) {
			n++
		}
	}
	return n
}

var lastArrivals *arrivals

// startEmulator serves evs on a real clock with delivery delay 0, AWS's rate limit, a SigV4
// verifier and expired-token answers.
func startEmulator(t testing.TB, evs []core.RawEvent) (*emulator.Emulator, string) {
	t.Helper()
	em, err := emulator.New(evs, emulator.WithDeliveryDelay(0),
		emulator.WithKeys(emulator.Key{AccessKeyID: accessKey, SecretAccessKey: secret},
			emulator.Key{AccessKeyID: deniedKey, SecretAccessKey: secret, Denied: true}),
		emulator.WithVerifier(conntest.VerifySigV4))
	if err != nil {
		t.Fatal(err)
	}
	lastArrivals = &arrivals{h: conntest.ExpireTokens(em)}
	srv := httptest.NewServer(lastArrivals)
	t.Cleanup(srv.Close)
	return em, srv.URL
}

// client talks to a server with its token and validates every answer against the spec.
type client struct {
	t     testing.TB
	base  string
	token string
	http  *http.Client

	mu       sync.Mutex
	statuses map[int]int
}

var (
	validatorOnce sync.Once
	validator     *apitest.Validator
)

func newClient(t testing.TB, base, token string) *client {
	validatorOnce.Do(func() { validator = apitest.MustLoad(t) })
	return &client{t: t, base: base, token: token, statuses: map[int]int{},
		http: &http.Client{Timeout: 60 * time.Second, Transport: validator.Transport(t, nil)}}
}

type response struct {
	status int
	body   []byte
}

func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.statuses[resp.StatusCode]++
	c.mu.Unlock()
	return response{status: resp.StatusCode, body: b}
}

// must fails unless the answer has status, and decodes it into v when given.
func (c *client) must(status int, r response, v any) {
	c.t.Helper()
	if r.status != status {
		c.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			c.t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// waitRun polls a run until its status is one of want or the deadline passes.
func (c *client) waitRun(id string, timeout time.Duration, want ...string) *api.RunView {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var run api.RunView
		c.must(200, c.do("GET", "/v1/runs/"+id+"?limit=1000", nil), &run)
		for _, w := range want {
			if run.Status == w {
				return &run
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("run %s still %s after %s (queries %d, error %q)", id, run.Status, timeout, run.Queries, run.Error)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func startServer(t testing.TB, dir string, logs io.Writer) (*server.Server, *client) {
	t.Helper()
	s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: dir,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Policy: testenv.LoopbackPolicy})
	if err != nil {
		t.Fatal(err)
	}
	token, err := server.ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, newClient(t, s.URL(), token)
}

func shutdown(t testing.TB, s *server.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
