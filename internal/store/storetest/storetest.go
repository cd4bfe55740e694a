// Package storetest is the conformance suite every core.Store implementation must pass, so that
// the local binary (bolt) and the serverless deployment (dynamo) behave the same to the workflow
// and the API.
package storetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/trailproof/trailproof/internal/testenv"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailproof/trailproof/internal/core"
)

// NewStore opens a fresh, empty store for one test; the suite closes it.
type NewStore func(t *testing.T) core.Store

// Run runs the whole suite against the stores newStore opens. Every subtest opens its own store.
func Run(t *testing.T, newStore NewStore) {
	t.Run("Integrations", func(t *testing.T) { testIntegrations(t, open(t, newStore)) })
	t.Run("IntegrationErrors", func(t *testing.T) { testIntegrationErrors(t, open(t, newStore)) })
	t.Run("Runs", func(t *testing.T) { testRuns(t, open(t, newStore)) })
	t.Run("ListRuns", func(t *testing.T) { testListRuns(t, open(t, newStore)) })
	t.Run("LargeResult", func(t *testing.T) { testLargeResult(t, open(t, newStore)) })
	t.Run("RawEvents", func(t *testing.T) { testRawEvents(t, open(t, newStore)) })
	t.Run("RawEventRanges", func(t *testing.T) { testRawEventRanges(t, open(t, newStore)) })
	t.Run("RawEventErrors", func(t *testing.T) { testRawEventErrors(t, open(t, newStore)) })
	t.Run("RepeatedStep", func(t *testing.T) { testRepeatedStep(t, open(t, newStore)) })
	t.Run("SharedReads", func(t *testing.T) { runShared(t, newStore) })
	t.Run("Sensors", func(t *testing.T) { testSensors(t, open(t, newStore)) })
	t.Run("DeleteGuard", func(t *testing.T) { testDeleteGuard(t, open(t, newStore)) })
	t.Run("DeleteGuardRace", func(t *testing.T) { testDeleteGuardRace(t, open(t, newStore)) })
}

func open(t *testing.T, newStore NewStore) core.Store {
	t.Helper()
	s := newStore(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// wantCode fails the test unless err carries code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := core.ErrorCode(err); got != code {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

// must fails the test at once on an error.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Base time of the fixtures: the design's sample action.
var t0 = time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC)

// SecretValue is planted in the integrations the suite stores, so that implementation tests can
// grep their raw storage for it.
const SecretValue = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz"

// Integration returns a complete MSI integration with every secret set.
func Integration(id string) *core.Integration {
	return &core.Integration{
		ID: id, Type: core.TypeMSI, Name: "integration " + id,
		AWSRegion: "eu-west-1", AccessKeyID: "AKIAIOSFODNN7EXAMPLE",
		SecretAccessKey: SecretValue, SessionToken: core.Secret("session-token-" + id + "-SECRETzz"),
		RoleARN: "arn:aws:iam::123456789012:role/trailproof", ExternalID: core.Secret("external-" + id + "-SECRETzz"),
		Timeout: 30, VerifySSL: true, PageSize: 100, MaxPage: 5,
		EventSensorUUIDs: []string{"7f0c9d3e-0000-4000-8000-000000000001"},
		FieldMap:         map[string][]string{"user": {"userIdentity.arn", "Username"}},
		QueryTime:        5, QueryInterval: 30, CorrelationQueryEnabled: true,
		CorrelationQuery:         `record.eventName in ["StopLogging"]`,
		CorrelationQueryInterval: 5, DiscoverNetworkDevices: true, Limit: 10000, SettleTime: 10,
		CreatedAt: t0, UpdatedAt: t0,
	}
}

func testIntegrations(t *testing.T, s core.Store) {
	ctx := context.Background()
	b := Integration("int-b")
	a := Integration("int-a")
	a.SessionToken, a.ExternalID = "", "" // some secrets unset: they must stay unset
	for _, in := range []*core.Integration{b, a} {
		must(t, "CreateIntegration "+in.ID, s.CreateIntegration(ctx, in))
	}

	got, err := s.GetIntegration(ctx, "int-b")
	must(t, "GetIntegration", err)
	if diff := cmp.Diff(b, got); diff != "" {
		t.Errorf("GetIntegration must return the integration with its secrets revealed (-want +got):\n%s", diff)
	}

	list, err := s.ListIntegrations(ctx)
	must(t, "ListIntegrations", err)
	want := []*core.Integration{a.Redact(), b.Redact()}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("ListIntegrations must return every integration by ID, secrets redacted (-want +got):\n%s", diff)
	}
	for _, in := range list {
		for _, sec := range []core.Secret{in.SecretAccessKey, in.SessionToken, in.ExternalID} {
			if sec.IsSet() && sec.Reveal() != core.Redacted {
				t.Errorf("ListIntegrations leaked a secret of %s", in.ID)
			}
		}
	}

	// Update replaces everything, secrets included.
	upd := Integration("int-a")
	upd.Name, upd.AWSRegion, upd.SecretAccessKey, upd.SessionToken = "renamed", "us-east-2", "new-secret", ""
	upd.UpdatedAt = t0.Add(time.Hour)
	must(t, "UpdateIntegration", s.UpdateIntegration(ctx, upd))
	got, err = s.GetIntegration(ctx, "int-a")
	must(t, "GetIntegration after update", err)
	if diff := cmp.Diff(upd, got); diff != "" {
		t.Errorf("GetIntegration after UpdateIntegration (-want +got):\n%s", diff)
	}

	must(t, "DeleteIntegration", s.DeleteIntegration(ctx, "int-a"))
	_, err = s.GetIntegration(ctx, "int-a")
	wantCode(t, "GetIntegration after delete", err, core.ENOTFOUND)
	list, err = s.ListIntegrations(ctx)
	must(t, "ListIntegrations after delete", err)
	if len(list) != 1 || list[0].ID != "int-b" {
		t.Errorf("ListIntegrations after deleting int-a = %v, want only int-b", ids(list))
	}
}

func ids(list []*core.Integration) []string {
	var out []string
	for _, in := range list {
		out = append(out, in.ID)
	}
	return out
}

func testIntegrationErrors(t *testing.T, s core.Store) {
	ctx := context.Background()
	must(t, "CreateIntegration", s.CreateIntegration(ctx, Integration("dup")))
	changed := Integration("dup")
	changed.Name = "second"
	wantCode(t, "CreateIntegration with an existing ID", s.CreateIntegration(ctx, changed), core.ECONFLICT)
	got, err := s.GetIntegration(ctx, "dup")
	must(t, "GetIntegration", err)
	if got.Name != "integration dup" {
		t.Errorf("a refused CreateIntegration overwrote the stored one: name %q", got.Name)
	}

	_, err = s.GetIntegration(ctx, "missing")
	wantCode(t, "GetIntegration missing", err, core.ENOTFOUND)
	wantCode(t, "UpdateIntegration missing", s.UpdateIntegration(ctx, Integration("missing")), core.ENOTFOUND)
	wantCode(t, "DeleteIntegration missing", s.DeleteIntegration(ctx, "missing"), core.ENOTFOUND)
	_, err = s.GetIntegration(ctx, "missing")
	wantCode(t, "GetIntegration after a refused update", err, core.ENOTFOUND)
	wantCode(t, "CreateIntegration without ID", s.CreateIntegration(ctx, Integration("")), core.EINVALID)
}

// NewRun returns a run in its first state.
func NewRun(id, status string) *core.Run {
	r := &core.Run{
		RunID: id, JobID: "job-42", ActionID: "A104-123", IntegrationID: "int-1", Integration: "prod",
		Action: core.Action{JobID: "job-42", ActionID: "A104-123", StartTime: t0,
			Actor:          core.Actor{UserAgentToken: "stratus-red-team_5c59eb79", Hosts: []string{"1.2.3.4"}},
			ExpectedEvents: []string{"ec2.amazonaws.com:GetPasswordData"}},
		StartedAt: t0, Status: status,
		Window:   core.Window{From: t0.Add(-5 * time.Minute), To: t0.Add(5 * time.Minute)},
		Expected: []core.ExpectedCount{{Event: "ec2.amazonaws.com:GetPasswordData"}},
		Progress: core.Progress{NextQueryAt: t0.Add(30 * time.Second)},
	}
	r.SettleVerdict()
	return r
}

// AddRunIntegration stores the integration NewRun's runs belong to: a store refuses a run whose
// integration it does not hold.
func AddRunIntegration(t testing.TB, s core.Store) {
	t.Helper()
	if err := s.CreateIntegration(context.Background(), Integration("int-1")); err != nil && core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("CreateIntegration int-1: %v", err)
	}
}

func testRuns(t *testing.T, s core.Store) {
	ctx := context.Background()
	AddRunIntegration(t, s)
	r := NewRun("run-1", core.StatusWaiting)
	must(t, "CreateRun", s.CreateRun(ctx, r))
	if r.Version != 1 {
		t.Errorf("CreateRun left Version %d, want 1", r.Version)
	}
	got, err := s.GetRun(ctx, "run-1")
	must(t, "GetRun", err)
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("GetRun after CreateRun (-want +got):\n%s", diff)
	}
	wantCode(t, "CreateRun with an existing ID", s.CreateRun(ctx, NewRun("run-1", core.StatusFailed)), core.ECONFLICT)
	_, err = s.GetRun(ctx, "nope")
	wantCode(t, "GetRun missing", err, core.ENOTFOUND)
	missing := NewRun("nope", core.StatusQuerying)
	missing.Version = 1
	wantCode(t, "UpdateRun missing", s.UpdateRun(ctx, missing), core.ENOTFOUND)

	// A writer updates; a second writer holding the same version is refused and writes nothing.
	stale := *got
	got.Status, got.Queries, got.APICalls = core.StatusQuerying, 1, 3
	got.Events = []core.Event{Event(1, 100)}
	got.Progress.Cursors = []core.Cursor{{Region: "eu-west-1", SettledUntil: t0}}
	got.Progress.LastStepKey = "fetch#1"
	// What the correlate steps remember of events they do not keep is stored with the run, though
	// no result shows it.
	got.Unkept = core.Unkept{Beyond: []core.Beyond{{ID: "e9", Expected: 0}, {ID: "e10", Expected: -1, Pushed: true}}, Pushed: []string{"e1"}}
	got.Progress.Correlated = core.Correlated{Streams: []core.StreamMark{{Stream: "it#us-east-1#", Version: 7}}, Matched: 3, Accounts: []string{"111122223333"}}
	must(t, "UpdateRun", s.UpdateRun(ctx, got))
	if got.Version != 2 {
		t.Errorf("UpdateRun left Version %d, want 2", got.Version)
	}
	stale.Status, stale.Error = core.StatusFailed, "lost the race"
	stale.Alerts = []core.Event{Event(2, 100)}
	wantCode(t, "UpdateRun with a stale Version", s.UpdateRun(ctx, &stale), core.ECONFLICT)
	if stale.Version != 1 {
		t.Errorf("a refused UpdateRun changed Version to %d", stale.Version)
	}
	stored, err := s.GetRun(ctx, "run-1")
	must(t, "GetRun after updates", err)
	if diff := cmp.Diff(got, stored); diff != "" {
		t.Errorf("stored run must be the winner's, untouched by the stale writer (-want +got):\n%s", diff)
	}

	// The result ends the run; a second update with the same lists keeps them.
	done := time.Date(2024, 7, 30, 21, 52, 0, 123456789, time.UTC)
	stored.Status, stored.CompletedAt = core.StatusCompleted, &done
	stored.MarkLogged(true, done)
	stored.MarkAlerted(true)
	stored.Alerts = []core.Event{Event(3, 100)}
	stored.Warnings = []string{"throttled once"}
	must(t, "UpdateRun to completed", s.UpdateRun(ctx, stored))
	stored.Warnings = append(stored.Warnings, "second")
	must(t, "UpdateRun with unchanged lists", s.UpdateRun(ctx, stored))
	final, err := s.GetRun(ctx, "run-1")
	must(t, "GetRun final", err)
	if diff := cmp.Diff(stored, final); diff != "" {
		t.Errorf("GetRun after completion (-want +got):\n%s", diff)
	}
	if final.Version != 4 {
		t.Errorf("Version after three updates = %d, want 4", final.Version)
	}
}

func testListRuns(t *testing.T, s core.Store) {
	AddRunIntegration(t, s)
	ctx := context.Background()
	statuses := map[string]string{
		"r1": core.StatusWaiting, "r2": core.StatusQuerying, "r3": core.StatusQuerying,
		"r4": core.StatusCompleted, "r5": core.StatusFailed, "r6": core.StatusCancelled,
	}
	for _, id := range []string{"r3", "r1", "r6", "r2", "r5", "r4"} {
		r := NewRun(id, core.StatusWaiting)
		r.Events = []core.Event{Event(1, 50)}
		must(t, "CreateRun "+id, s.CreateRun(ctx, r))
		if statuses[id] != core.StatusWaiting {
			r.Status = statuses[id]
			must(t, "UpdateRun "+id, s.UpdateRun(ctx, r))
		}
	}
	for _, tc := range []struct {
		statuses []string
		want     []string
	}{
		{nil, []string{"r1", "r2", "r3", "r4", "r5", "r6"}},
		{[]string{core.StatusQuerying}, []string{"r2", "r3"}},
		{[]string{core.StatusWaiting, core.StatusQuerying}, []string{"r1", "r2", "r3"}},
		{[]string{core.StatusCompleted, core.StatusFailed, core.StatusCancelled}, []string{"r4", "r5", "r6"}},
		{[]string{"no-such-status"}, nil},
	} {
		runs, err := s.ListRuns(ctx, tc.statuses...)
		must(t, fmt.Sprintf("ListRuns(%v)", tc.statuses), err)
		var got []string
		for _, r := range runs {
			got = append(got, r.RunID)
			if r.Status != statuses[r.RunID] {
				t.Errorf("ListRuns(%v): %s has status %q, want %q", tc.statuses, r.RunID, r.Status, statuses[r.RunID])
			}
			wantVersion := int64(2) // created, then updated to its status
			if statuses[r.RunID] == core.StatusWaiting {
				wantVersion = 1
			}
			if r.Version != wantVersion {
				t.Errorf("ListRuns: %s has Version %d, want %d", r.RunID, r.Version, wantVersion)
			}
			if r.JobID != "job-42" || !r.StartedAt.Equal(t0) {
				t.Errorf("ListRuns: %s lost its fields: %+v", r.RunID, r)
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ListRuns(%v) run IDs, ordered by ID (-want +got):\n%s", tc.statuses, diff)
		}
	}
}

// Event returns a normalized event whose raw record is about rawSize bytes of JSON.
func Event(n, rawSize int) core.Event {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(rawSize)))
	pad := make([]byte, max(rawSize/2-150, 1))
	for i := range pad {
		pad[i] = byte(rng.UintN(256))
	}
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", n, rng.Uint64()&0xffffffffffff)
	at := t0.Add(time.Duration(n) * time.Millisecond)
	raw := fmt.Sprintf(`{"eventVersion":"1.08","eventID":%q,"eventTime":%q,"eventName":"GetPasswordData","requestParameters":{"instanceId":"i-%s"}}`,
		id, at.Format(time.RFC3339), hex.EncodeToString(pad))
	return core.Event{
		EventID: id, EventTime: at, Hosts: []string{"1.2.3.4"}, SrcIP: "1.2.3.4",
		User: "arn:aws:iam::123456789012:user/red", EventName: "GetPasswordData",
		EventSource: "ec2.amazonaws.com", Region: "eu-west-1", AccountID: "123456789012",
		UserAgent: "stratus-red-team_5c59eb79", SensorUUID: "7f0c9d3e-0000-4000-8000-000000000001",
		MatchedOn: []string{"userAgentToken"}, Raw: []byte(raw),
	}
}

// Events returns n events from first on, each with a raw record of about rawSize bytes.
func Events(first, n, rawSize int) []core.Event {
	out := make([]core.Event, n)
	for i := range out {
		out[i] = Event(first+i, rawSize)
	}
	return out
}

// testLargeResult stores a result far over DynamoDB's 400 KB item limit: 10,000 events with a
// 2 KB raw record each, plus alerts and suspicious events.
func testLargeResult(t *testing.T, s core.Store) {
	AddRunIntegration(t, s)
	if testing.Short() {
		t.Skip("stores about 25 MB; skipped with -short")
	}
	ctx := context.Background()
	r := NewRun("big", core.StatusQuerying)
	r.Events = Events(0, 10000, 2048)
	r.Alerts = Events(20000, 500, 2048)
	r.Suspicious = Events(30000, 1000, 2048)
	must(t, "CreateRun with 10,000 events", s.CreateRun(ctx, r))
	got, err := s.GetRun(ctx, "big")
	must(t, "GetRun", err)
	if diff := cmp.Diff(r, got, fast); diff != "" {
		t.Fatalf("10,000-event result did not round-trip (-want +got):\n%.3000s", diff)
	}

	// Replace the lists with others of the same size, then end the run with the lists unchanged.
	r.Events = Events(40000, 10000, 2048)
	r.Suspicious = nil
	must(t, "UpdateRun with new lists", s.UpdateRun(ctx, r))
	r.Status = core.StatusCompleted
	must(t, "UpdateRun with the same lists", s.UpdateRun(ctx, r))
	got, err = s.GetRun(ctx, "big")
	must(t, "GetRun after updates", err)
	if diff := cmp.Diff(r, got, fast); diff != "" {
		t.Fatalf("updated large result (-want +got):\n%.3000s", diff)
	}
	if len(got.Events) != 10000 || got.Events[9999].EventID != r.Events[9999].EventID {
		t.Errorf("got %d events, want 10000 ending with %s", len(got.Events), r.Events[9999].EventID)
	}
}

// Raw returns a raw event with a small CloudTrail record.
func Raw(id string, at time.Time) core.RawEvent {
	return core.RawEvent{
		EventID: id, EventTime: at, Region: "eu-west-1",
		Record:   []byte(fmt.Sprintf(`{"eventID":%q,"eventTime":%q,"eventName":"GetPasswordData"}`, id, at.UTC().Format(time.RFC3339))),
		Envelope: []byte(fmt.Sprintf(`{"EventId":%q,"EventName":"GetPasswordData","Username":"red"}`, id)),
	}
}

// fast compares JSON bytes in one call: go-cmp walks a []byte element by element, which takes
// minutes over the 25 MB of the large-result test.
var fast = cmp.Comparer(func(a, b json.RawMessage) bool { return bytes.Equal(a, b) })

// rawOpts treats a nil and an empty list alike.
var rawOpts = cmp.Options{cmpopts.EquateEmpty(), fast}

func testRawEvents(t *testing.T, s core.Store) {
	ctx := context.Background()
	first := []core.RawEvent{
		Raw("e3", t0.Add(3*time.Second)), Raw("e1", t0.Add(time.Second)), Raw("e2", t0.Add(2*time.Second)),
		Raw("e1", t0.Add(time.Second)), // the same event twice in one call is one event
	}
	n, err := s.AddRawEvents(ctx, "run-1", first)
	must(t, "AddRawEvents", err)
	if n != 3 {
		t.Errorf("AddRawEvents of 3 distinct events returned %d new", n)
	}

	// A re-read returns known events again, one of them with another time and record: the first
	// version stays, and only the really new ones count.
	moved := Raw("e2", t0.Add(10*time.Second))
	moved.Record = []byte(`{"eventID":"e2","changed":true}`)
	again := []core.RawEvent{Raw("e1", t0.Add(time.Second)), moved, Raw("e4", t0.Add(4*time.Second)), Raw("e3", t0.Add(3*time.Second))}
	n, err = s.AddRawEvents(ctx, "run-1", again)
	must(t, "AddRawEvents again", err)
	if n != 1 {
		t.Errorf("AddRawEvents with 3 known events and 1 new returned %d new, want 1", n)
	}
	n, err = s.AddRawEvents(ctx, "run-1", nil)
	must(t, "AddRawEvents of nothing", err)
	if n != 0 {
		t.Errorf("AddRawEvents(nil) = %d", n)
	}

	// Another partition is independent: the same IDs are new there.
	n, err = s.AddRawEvents(ctx, "integration-1", []core.RawEvent{Raw("e1", t0.Add(time.Second))})
	must(t, "AddRawEvents other partition", err)
	if n != 1 {
		t.Errorf("AddRawEvents in another partition = %d new, want 1", n)
	}

	got, err := core.CollectRawEvents(s.RawEvents(ctx, "run-1", time.Time{}, time.Time{}))
	must(t, "RawEvents", err)
	want := []core.RawEvent{Raw("e1", t0.Add(time.Second)), Raw("e2", t0.Add(2*time.Second)),
		Raw("e3", t0.Add(3*time.Second)), Raw("e4", t0.Add(4*time.Second))}
	if diff := cmp.Diff(want, got, rawOpts); diff != "" {
		t.Errorf("RawEvents: each event once, first version, oldest first (-want +got):\n%s", diff)
	}
	got, err = core.CollectRawEvents(s.RawEvents(ctx, "unknown-partition", time.Time{}, time.Time{}))
	must(t, "RawEvents of an unknown partition", err)
	if len(got) != 0 {
		t.Errorf("RawEvents of an unknown partition returned %d events", len(got))
	}
}

func testRawEventRanges(t *testing.T, s core.Store) {
	ctx := context.Background()
	paris := time.FixedZone("CEST", 2*3600)
	evs := []core.RawEvent{
		Raw("b", t0),
		Raw("a", t0), // same time: ordered by EventID
		Raw("c", t0.Add(time.Second-time.Nanosecond)),
		Raw("d", t0.Add(time.Second)),
		Raw("e", t0.Add(time.Second+time.Nanosecond)),
		Raw("f", t0.Add(2*time.Second).In(paris)), // another zone, same instant ordering
		Raw("g", t0.Add(-time.Hour)),
		Raw("h", t0.Add(48*time.Hour)),
	}
	// Many events of about 1 KB too, over 1 MB in all, to cross any page size of the backend
	// (DynamoDB's Query pages at 1 MB).
	pad := strings.Repeat("x", 900)
	for i := range 1200 {
		ev := Raw(fmt.Sprintf("p%04d", i), t0.Add(time.Minute+time.Duration(i)*time.Millisecond))
		ev.Record = []byte(fmt.Sprintf(`{"eventID":"p%04d","pad":%q}`, i, pad))
		evs = append(evs, ev)
	}
	n, err := s.AddRawEvents(ctx, "run-r", evs)
	must(t, "AddRawEvents", err)
	if n != len(evs) {
		t.Fatalf("AddRawEvents = %d new, want %d", n, len(evs))
	}
	idsOf := func(evs []core.RawEvent) []string {
		var out []string
		for _, e := range evs {
			if !strings.HasPrefix(e.EventID, "p") {
				out = append(out, e.EventID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []string
		pages    int
	}{
		{"both ends included", t0, t0.Add(time.Second), []string{"a", "b", "c", "d"}, 0},
		{"nanosecond bounds", t0.Add(time.Second), t0.Add(time.Second + time.Nanosecond), []string{"d", "e"}, 0},
		{"bounds in another zone", t0.Add(2 * time.Second).In(paris), t0.Add(2 * time.Second), []string{"f"}, 0},
		{"open start", time.Time{}, t0, []string{"g", "a", "b"}, 0},
		{"open end", t0.Add(2 * time.Second), time.Time{}, []string{"f", "h"}, 1200},
		{"empty span", t0.Add(3 * time.Second), t0.Add(4 * time.Second), nil, 0},
		{"reversed span", t0.Add(time.Second), t0, nil, 0},
		{"everything", time.Time{}, time.Time{}, []string{"g", "a", "b", "c", "d", "e", "f", "h"}, 1200},
	} {
		got, err := core.CollectRawEvents(s.RawEvents(ctx, "run-r", tc.from, tc.to))
		must(t, "RawEvents "+tc.name, err)
		if diff := cmp.Diff(tc.want, idsOf(got)); diff != "" {
			t.Errorf("RawEvents %s (-want +got):\n%s", tc.name, diff)
		}
		if p := len(got) - len(idsOf(got)); p != tc.pages {
			t.Errorf("RawEvents %s: %d of the bulk events, want %d", tc.name, p, tc.pages)
		}
		if !slices.IsSortedFunc(got, func(a, b core.RawEvent) int { return a.EventTime.Compare(b.EventTime) }) {
			t.Errorf("RawEvents %s: not oldest first", tc.name)
		}
	}

	testRawEventVisits(t, s)
}

func testRawEventErrors(t *testing.T, s core.Store) {
	ctx := context.Background()
	_, err := s.AddRawEvents(ctx, "run-1", []core.RawEvent{Raw("ok", t0), Raw("", t0)})
	wantCode(t, "AddRawEvents with an empty EventID", err, core.EINVALID)
	got, err := core.CollectRawEvents(s.RawEvents(ctx, "run-1", time.Time{}, time.Time{}))
	must(t, "RawEvents", err)
	if len(got) != 0 {
		t.Errorf("a refused AddRawEvents stored %d events", len(got))
	}
	_, err = s.AddRawEvents(ctx, "", []core.RawEvent{Raw("ok", t0)})
	wantCode(t, "AddRawEvents without partition", err, core.EINVALID)
}

// testRepeatedStep replays a workflow step that crashed between its two writes: the raw events
// were stored, the run update was not. The step runs again from the run it read before.
func testRepeatedStep(t *testing.T, s core.Store) {
	AddRunIntegration(t, s)
	ctx := context.Background()
	r := NewRun("run-crash", core.StatusQuerying)
	must(t, "CreateRun", s.CreateRun(ctx, r))
	read := []core.RawEvent{Raw("x1", t0), Raw("x2", t0.Add(time.Second)), Raw("x3", t0.Add(2*time.Second))}

	step := func() (int, error) {
		before, err := s.GetRun(ctx, "run-crash")
		if err != nil {
			return 0, err
		}
		n, err := s.AddRawEvents(ctx, before.RunID, read)
		if err != nil {
			return 0, err
		}
		return n, nil
	}
	n, err := step()
	must(t, "first attempt", err)
	if n != 3 {
		t.Fatalf("first attempt added %d, want 3", n)
	}
	// ...crash: UpdateRun never ran. The retry reads the same run and repeats the step.
	n, err = step()
	must(t, "second attempt", err)
	if n != 0 {
		t.Errorf("the repeated step added %d events, want 0 (all stored by the first attempt)", n)
	}
	again, err := s.GetRun(ctx, "run-crash")
	must(t, "GetRun", err)
	again.Queries, again.Progress.LastStepKey = 1, "fetch#1"
	again.Progress.RawEvents = 3
	must(t, "UpdateRun after the repeat", s.UpdateRun(ctx, again))

	got, err := core.CollectRawEvents(s.RawEvents(ctx, "run-crash", time.Time{}, time.Time{}))
	must(t, "RawEvents", err)
	if diff := cmp.Diff(read, got, rawOpts); diff != "" {
		t.Errorf("after the repeated step, nothing duplicated and nothing lost (-want +got):\n%s", diff)
	}
	final, err := s.GetRun(ctx, "run-crash")
	must(t, "GetRun final", err)
	if final.Version != 2 || final.Progress.LastStepKey != "fetch#1" || final.Progress.RawEvents != 3 {
		t.Errorf("run after the repeat: Version %d, LastStepKey %q, RawEvents %d; want 2, fetch#1, 3",
			final.Version, final.Progress.LastStepKey, final.Progress.RawEvents)
	}
}

// DynamoEndpoint returns the DynamoDB Local endpoint for tests: DYNAMODB_ENDPOINT, else
// http://127.0.0.1:8000. It skips the test when nothing answers there.
func DynamoEndpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("DYNAMODB_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:8000"
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		t.Fatalf("DYNAMODB_ENDPOINT=%q is not a URL like http://127.0.0.1:8000", ep)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		testenv.Skip(t, "DynamoDB Local is not answering at %s (%v): start it with infra/scripts/dynamodb-local.sh start, or set DYNAMODB_ENDPOINT", ep, err)
	}
	c.Close()
	return ep
}
