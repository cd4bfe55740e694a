package sfntest

import (
	"crypto/rand"
	"encoding/hex"
	"github.com/trailproof/trailproof/internal/alerts"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/workflow"
)

// EnvDynamoDBEndpoint, when set (http://127.0.0.1:8000), makes fixtures keep their runs in
// DynamoDB Local, in a table of their own, instead of a bbolt file.
const EnvDynamoDBEndpoint = "DYNAMODB_ENDPOINT"

// DeliveryDelay is how long after its eventTime a record becomes visible in fixtures.
const DeliveryDelay = 5 * time.Minute

// Fixture is one stored run ready to execute: the demo integration (examples/demo) reading an
// emulator that serves the demo corpus on a virtual clock, and a run of the demo action. The
// clock starts at the action's startTime, as `trailproof run --clock virtual` does.
type Fixture struct {
	Store       core.Store
	Clock       *clock.Virtual
	Sources     core.SourceFactory
	Integration *core.Integration
	Action      *core.Action
	RunID       string
	Emulator    *emulator.Emulator
}

// FixtureOptions changes the demo run.
type FixtureOptions struct {
	// ExpectedEvents replaces the action's expected events when not nil.
	ExpectedEvents []string
	// Sources wraps the source factory (to inject faults), when set.
	Sources func(core.SourceFactory) core.SourceFactory
	// RunID names the run (default: random), so two fixtures can hold the same run.
	RunID string
	// Corpus adds files of CloudTrail records to the demo corpus.
	Corpus []string
	// Integration changes the demo integration before it is stored, when set.
	Integration func(*core.Integration)
	// CallsPerSecond is the sources' LookupEvents rate on the virtual clock (default 1000, so
	// that reads take next to no virtual time).
	CallsPerSecond float64
	// Store is "bolt" or "dynamodb" (DynamoDB Local at DYNAMODB_ENDPOINT); default: DynamoDB
	// when DYNAMODB_ENDPOINT is set, else bolt.
	Store string
}

// NewFixture builds a fixture; everything it starts stops when the test ends.
func NewFixture(t testing.TB, opts FixtureOptions) *Fixture {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(root, "examples", "demo")
	integ, err := core.LoadIntegrationFile(filepath.Join(demo, "integration.json"))
	if err != nil {
		t.Fatal(err)
	}
	action, err := core.LoadActionFile(filepath.Join(demo, "action.json"))
	if err != nil {
		t.Fatal(err)
	}
	if opts.ExpectedEvents != nil {
		action.ExpectedEvents = opts.ExpectedEvents
	}
	events, err := corpus.Load(append([]string{filepath.Join(demo, "cloudtrail.json")}, opts.Corpus...)...)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(action.StartTime)
	emu, err := emulator.New(events, emulator.WithClock(clk), emulator.WithDeliveryDelay(DeliveryDelay), emulator.WithRate(0))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	integ.ID = "demo"
	integ.Endpoint = srv.URL
	if opts.Integration != nil {
		opts.Integration(integ)
	}
	store := newStore(t, opts.Store)
	if err := store.CreateIntegration(t.Context(), integ); err != nil {
		t.Fatal(err)
	}
	rate, burst := 1000.0, 100
	if opts.CallsPerSecond > 0 {
		rate, burst = opts.CallsPerSecond, 1
	}
	var sources core.SourceFactory = cloudtrail.NewFactory(t.Context(), cloudtrail.WithClock(clk), cloudtrail.WithRateLimit(rate, burst),
		cloudtrail.WithPolicy(netguard.MustNew([]string{srv.URL}, nil))) // the fixture's own emulator
	if opts.Sources != nil {
		sources = opts.Sources(sources)
	}
	f := &Fixture{Store: store, Clock: clk, Sources: sources, Integration: integ, Action: action, Emulator: emu}
	id := opts.RunID
	if id == "" {
		id = "run-" + randomHex(6)
	}
	r, err := f.Engine().CreateRun(t.Context(), integ.ID, action, id)
	if err != nil {
		t.Fatal(err)
	}
	f.RunID = r.RunID
	return f
}

// Engine returns an engine over the fixture's store, sources and clock.
func (f *Fixture) Engine(opts ...workflow.Option) *workflow.Engine {
	base := []workflow.Option{workflow.WithClock(f.Clock), workflow.WithAlertCompiler(alerts.Compiler())}
	return workflow.New(f.Store, f.Sources, append(base, opts...)...)
}

// Run returns the stored run.
func (f *Fixture) Run(t testing.TB) *core.Run {
	t.Helper()
	r, err := f.Store.GetRun(t.Context(), f.RunID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newStore(t testing.TB, kind string) core.Store {
	t.Helper()
	ep := os.Getenv(EnvDynamoDBEndpoint)
	if kind == "dynamodb" && ep == "" {
		testenv.Skip(t, "DYNAMODB_ENDPOINT is not set: export DYNAMODB_ENDPOINT=http://127.0.0.1:8000 to run against DynamoDB Local")
	}
	if ep != "" && kind != "bolt" {
		key := make([]byte, seal.KeySize)
		_, _ = rand.Read(key)
		sealer, err := seal.NewAESGCM(key)
		if err != nil {
			t.Fatal(err)
		}
		s, err := dynamo.New(dynamo.LocalClient(ep), "sfntest-"+randomHex(6), dynamo.WithSealer(sealer))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTable(t.Context()); err != nil {
			t.Fatalf("DynamoDB Local at %s: %v", ep, err)
		}
		return s
	}
	s, err := bolt.Open(filepath.Join(t.TempDir(), "trailproof.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
