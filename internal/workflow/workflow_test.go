package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/workflow"
)

// stack is one correlation's world: a bolt store, a CloudTrail emulator over a corpus on a
// virtual clock, and the engine, all as `trailproof run --corpus` wires them.
type stack struct {
	store *bolt.Store
	clock *clock.Virtual
	emu   *emulator.Emulator
	url   string
	eng   *workflow.Engine
	steps []string
}

func newStack(t testing.TB, events []core.RawEvent, start time.Time, emuOpts ...emulator.Option) *stack {
	t.Helper()
	s := &stack{clock: clock.NewVirtual(start)}
	s.emu, s.url = serveEmulator(t, s.clock, events,
		append([]emulator.Option{emulator.WithDeliveryDelay(5 * time.Minute), emulator.WithSeed(42)}, emuOpts...)...)
	var err error
	s.store, err = bolt.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	s.eng = workflow.New(s.store, testSources(s.clock), workflow.WithClock(s.clock), workflow.WithAlertCompiler(alerts.Compiler()),
		workflow.WithObserver(func(step string, in, out workflow.State) { s.steps = append(s.steps, step) }))
	return s
}

// serveEmulator starts an emulator of events on clk, served on loopback until the test ends: the
// one emulator setup of this package's stacks.
func serveEmulator(t testing.TB, clk clock.Clock, events []core.RawEvent, opts ...emulator.Option) (*emulator.Emulator, string) {
	t.Helper()
	emu, err := emulator.New(events, append([]emulator.Option{emulator.WithClock(clk)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emulator.Serve(emu, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return emu, srv.URL()
}

// testSources is the source factory of this package's stacks: their clock, no logs, and the
// tests' own loopback servers allowed.
func testSources(clk clock.Clock) *cloudtrail.Factory {
	return cloudtrail.NewFactory(context.Background(), cloudtrail.WithClock(clk), cloudtrail.WithLogger(slog.New(slog.DiscardHandler)),
		cloudtrail.WithPolicy(testenv.LoopbackPolicy))
}

// integration stores an integration pointed at the stack's emulator.
func (s *stack) integration(t testing.TB, settings string) *core.Integration {
	t.Helper()
	return storeIntegration(t, s.store, s.url, settings)
}

// storeIntegration parses settings and stores them as integration "it" reading endpoint.
func storeIntegration(t testing.TB, st core.Store, endpoint, settings string) *core.Integration {
	t.Helper()
	in, err := core.ParseIntegration([]byte(settings))
	if err != nil {
		t.Fatal(err)
	}
	in.ID, in.Endpoint = "it", endpoint
	if err := st.CreateIntegration(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	return in
}

func (s *stack) run(t testing.TB, a *core.Action) *core.Run {
	t.Helper()
	ctx := context.Background()
	r, err := s.eng.CreateRun(ctx, "it", a, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err = s.eng.Execute(ctx, r.RunID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const baseSettings = `{"name":"t","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"test-secret-value"}`

func eventIDs(evs []core.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.EventID)
	}
	sort.Strings(out)
	return out
}

// detonation is one Stratus Red Team detonation log: its records and the user-agent token they carry.
type detonation struct {
	name  string
	token string
	ids   []string
	names []string // eventSource:eventName of its events, distinct
	first time.Time
}

func detonations(t testing.TB) []detonation {
	dir := testenv.SharedData(t, "stratus-red-team", "docs", "detonation-logs")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var out []detonation
	for _, f := range files {
		evs, err := corpus.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		d := detonation{name: strings.TrimSuffix(filepath.Base(f), ".json"), first: evs[0].EventTime}
		for _, e := range evs {
			ua := gjson.GetBytes(e.Record, "userAgent").String()
			// Every detonation tags its user agent: stratus-red-team_<uuid>, or grimoire_<uuid>
			// for the two STS calls that Grimoire made itself.
			for _, prefix := range []string{"stratus-red-team_", "grimoire_"} {
				if i := strings.Index(ua, prefix); i >= 0 && d.token == "" {
					d.token = ua[i : i+len(prefix)+36]
				}
			}
			d.ids = append(d.ids, e.EventID)
			name := gjson.GetBytes(e.Record, "eventSource").String() + ":" + gjson.GetBytes(e.Record, "eventName").String()
			if !slices.Contains(d.names, name) {
				d.names = append(d.names, name)
			}
			if e.EventTime.Before(d.first) {
				d.first = e.EventTime
			}
		}
		sort.Strings(d.ids)
		out = append(out, d)
	}
	if len(out) != 35 {
		t.Fatalf("found %d detonation logs, want 35", len(out))
	}
	return out
}

// sigmaRule reads a Correlation Query written in CEL from a published Sigma rule, and the Stratus
// techniques it is meant to detect (its "// stratus:" header line).
func sigmaRule(t testing.TB, name string) (query string, intended []string) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "internal", "alerts", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "// stratus:"); ok {
			for _, f := range strings.Split(rest, ",") {
				intended = append(intended, strings.TrimSpace(f))
			}
		}
	}
	return string(b), intended
}

// stratusCorpus is every Stratus detonation with the TrailDiscover records as background, as one
// corpus (the test skips when the shared records are absent).
func stratusCorpus(t testing.TB) []core.RawEvent {
	t.Helper()
	data := testenv.SharedData(t)
	all, err := corpus.Load(filepath.Join(data, "stratus-red-team", "docs", "detonation-logs"),
		filepath.Join(data, "traildiscover", "docs", "logExamples"))
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestStratusDetonations: with every Stratus detonation and the TrailDiscover records loaded as
// one corpus, an action carrying a detonation's user-agent token and start time matches exactly
// that detonation's events, for every detonation, with and without injected faults. The
// integration's Correlation Query is Sigma's "AWS CloudTrail Important Change" in CEL: the run is
// alerted for the detonations it is meant for and for none of the others.
func TestStratusDetonations(t *testing.T) {
	all := stratusCorpus(t)
	dets := detonations(t)
	query, intended := sigmaRule(t, "sigma_cloudtrail_important_change.cel")
	qjson, _ := json.Marshal(query)
	settings := strings.TrimSuffix(baseSettings, "}") + `,"correlationQueryEnabled":true,"correlationQuery":` + string(qjson) + `}`
	// A run makes only a few calls (its read schedule): each detonation's emulator draws its
	// faults from a seed of its own, and the faults must have hit some of the runs.
	throttled := 0
	for _, faults := range []string{"", "throttle=0.3,error=0.1,dup=0.1"} {
		for i, d := range dets {
			t.Run(fmt.Sprintf("%s/faults=%s", d.name, faults), func(t *testing.T) {
				start := d.first.Add(-10 * time.Second)
				var opts []emulator.Option
				if faults != "" {
					f, err := emulator.ParseFaults(faults)
					if err != nil {
						t.Fatal(err)
					}
					opts = append(opts, emulator.WithFaults(f), emulator.WithSeed(uint64(i+1)))
				}
				s := newStack(t, all, start, opts...)
				s.integration(t, settings)
				r := s.run(t, &core.Action{JobID: "job", ActionID: d.name, StartTime: start, Actor: core.Actor{UserAgentToken: d.token}})
				if want := slices.Contains(intended, d.name); r.Alerted == nil || *r.Alerted != want {
					t.Errorf("alerted = %v, want %v (alerts %v, warnings %v)", r.IsAlerted(), want, eventIDs(r.Alerts), r.Warnings)
				}
				if r.Status != core.StatusCompleted || r.Verdict != core.VerdictLogged {
					t.Fatalf("status %s verdict %s error %q", r.Status, r.Verdict, r.Error)
				}
				if diff := cmp.Diff(d.ids, eventIDs(r.Events)); diff != "" {
					t.Errorf("matched events (-want +got):\n%s", diff)
				}
				if st := s.emu.Stats(); r.Throttled != st.ThrottledFault+st.ThrottledRate {
					t.Errorf("the run counts %d throttled calls, the emulator throttled %d", r.Throttled, st.ThrottledFault+st.ThrottledRate)
				}
				throttled += r.Throttled
			})
		}
	}
	if throttled == 0 {
		t.Error("no call of any run was throttled under the injected faults")
	}
}

// TestOTRFBreach: the action carrying the stolen instance-role key matches exactly the
// attacker's 11 calls and none of the console user's.
func TestOTRFBreach(t *testing.T) {
	f := testenv.SharedData(t, "otrf-security-datasets", "ec2_proxy_s3_exfiltration")
	all, err := corpus.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 103 {
		t.Fatalf("loaded %d OTRF records, want 103", len(all))
	}
	var want []string
	for _, e := range all {
		if gjson.GetBytes(e.Record, "userIdentity.accessKeyId").String() == "ASIA5FLZVX4OPVKKVBMX" {
			want = append(want, e.EventID)
		}
	}
	sort.Strings(want)
	if len(want) != 11 {
		t.Fatalf("the corpus has %d calls with the stolen key, want 11", len(want))
	}
	start := time.Date(2020, 9, 14, 1, 6, 40, 0, time.UTC)
	s := newStack(t, all, start)
	s.integration(t, `{"name":"t","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"x-secret","queryTime":7}`)
	r := s.run(t, &core.Action{JobID: "job", ActionID: "breach", StartTime: start,
		Actor: core.Actor{AccessKeyIDs: []string{"ASIA5FLZVX4OPVKKVBMX"}}})
	if diff := cmp.Diff(want, eventIDs(r.Events)); diff != "" {
		t.Errorf("matched events (-want +got):\n%s", diff)
	}
	for _, e := range r.Events {
		if strings.Contains(e.User, "pedro") || !slices.Equal(e.MatchedOn, []string{core.MatchAccessKey}) {
			t.Errorf("event %s by %s matched on %v", e.EventID, e.User, e.MatchedOn)
		}
	}
	if r.Status != core.StatusCompleted || r.Queries < 2 {
		t.Errorf("status %s after %d queries", r.Status, r.Queries)
	}
}

// TestPlasoLookupEventsShape: records in the LookupEvents response shape load and correlate; the
// field map reads the envelope's Username.
func TestPlasoLookupEventsShape(t *testing.T) {
	all, err := corpus.Load(testenv.SharedData(t, "plaso", "test_data", "jsonl", "aws_cloudtrail.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("loaded %d plaso records, want 6", len(all))
	}
	first := all[0].EventTime
	for _, e := range all {
		if e.EventTime.Before(first) {
			first = e.EventTime
		}
	}
	s := newStack(t, all, first)
	s.integration(t, `{"name":"t","awsRegion":"ap-southeast-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"x-secret","queryTime":60,"fieldMap":{"principal":["Username"]}}`)
	r := s.run(t, &core.Action{JobID: "job", ActionID: "plaso", StartTime: first, Actor: core.Actor{Principals: []string{"fakeusername"}}})
	if len(r.Events) == 0 {
		t.Fatalf("no event matched the envelope Username: %+v", r)
	}
	for _, e := range r.Events {
		if e.EventTime.IsZero() || e.EventName == "" {
			t.Errorf("event %s not normalized: %+v", e.EventID, e)
		}
	}
}

// TestFetchRepeatedIsIdempotent: a fetch step repeated with the same input (a Step Functions
// retry after a timeout) neither reads again nor duplicates events.
func TestFetchRepeatedIsIdempotent(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "demo", "cloudtrail.json"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := corpus.Parse("cloudtrail.json", b)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	s := newStack(t, evs, start.Add(6*time.Minute))
	in := s.integration(t, baseSettings)
	ctx := context.Background()
	r, err := s.eng.CreateRun(ctx, "it", &core.Action{JobID: "j", ActionID: "a", StartTime: start,
		Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}}, "r1")
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.eng.Begin(ctx, workflow.State{RunID: r.RunID})
	if err != nil {
		t.Fatal(err)
	}
	stored := func() int {
		n := 0
		for _, p := range workflow.Partitions(in, r) {
			raws, err := core.CollectRawEvents(s.store.RawEvents(ctx, p, time.Time{}, time.Time{}))
			if err != nil {
				t.Fatal(err)
			}
			n += len(raws)
		}
		return n
	}
	first, err := s.eng.Fetch(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	storedFirst := stored()
	again, err := s.eng.Fetch(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("repeated fetch changed the state (-first +again):\n%s", diff)
	}
	if calls := s.emu.Stats().Calls; calls != first.APICalls {
		t.Errorf("emulator saw %d calls, the run counts %d: the repeat read again", calls, first.APICalls)
	}
	if n := stored(); n != storedFirst || n == 0 {
		t.Errorf("stored %d raw events after the repeat, %d after the first fetch: want the same, not none", n, storedFirst)
	}
	out, err := json.Marshal(first)
	if err != nil || len(out) > 1024 {
		t.Errorf("state payload is %d bytes: it must carry keys and counters only", len(out))
	}
}
