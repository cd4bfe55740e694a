package workflow_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/store/storetest"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/workflow"
)

// sharedStack is a stack over a given store, for several runs of one integration.
type sharedStack struct {
	store core.Store
	clock clock.Clock
	emu   *emulator.Emulator
	url   string
	eng   *workflow.Engine
}

func newSharedStack(t *testing.T, st core.Store, clk clock.Clock, events []core.RawEvent, emuOpts ...emulator.Option) *sharedStack {
	t.Helper()
	s := &sharedStack{store: st, clock: clk}
	s.emu, s.url = serveEmulator(t, clk, events, append([]emulator.Option{emulator.WithSeed(7)}, emuOpts...)...)
	s.eng = workflow.New(st, testSources(clk), workflow.WithClock(clk), workflow.WithLeasePoll(20*time.Millisecond))
	return s
}

func (s *sharedStack) integration(t *testing.T, settings string) *core.Integration {
	t.Helper()
	return storeIntegration(t, s.store, s.url, settings)
}

func openBolt(t *testing.T) core.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openDynamo opens a store over a fresh table in DynamoDB Local, skipping when it is absent.
func openDynamo(t *testing.T) core.Store {
	t.Helper()
	client := dynamo.LocalClient(storetest.DynamoEndpoint(t))
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	sealer, err := seal.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	table := "trailproof-shared-" + hex.EncodeToString(suffix)
	st, err := dynamo.New(client, table, dynamo.WithSealer(sealer))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return st
}

// demoSettings reads the demo corpus where its records are: us-west-2 (and us-east-1 for STS).
const demoSettings = `{"name":"t","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"test-secret-value"}`

func demoEvents(t *testing.T) []core.RawEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "demo", "cloudtrail.json"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := corpus.Parse("cloudtrail.json", b)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestSharedReadsTwoRuns: two runs of one integration with the same window (two actions started
// together). The second's fetch 5 s later makes no call, and each run ends with
// exactly the events it matches when it runs alone, for fewer calls in all.
func TestSharedReadsTwoRuns(t *testing.T) {
	evs := demoEvents(t)
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	actions := []*core.Action{
		{JobID: "j", ActionID: "token", StartTime: start, Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}},
		{JobID: "j", ActionID: "host", StartTime: start, Actor: core.Actor{Hosts: []string{"198.51.100.7"}}},
	}
	soloCalls := 0
	var want [][]string
	for _, a := range actions {
		s := newStack(t, evs, start.Add(6*time.Minute))
		s.integration(t, demoSettings)
		r := s.run(t, a)
		if r.Status != core.StatusCompleted || len(r.Events) == 0 {
			t.Fatalf("solo run %s: status %s, %d events", a.ActionID, r.Status, len(r.Events))
		}
		soloCalls += r.APICalls
		want = append(want, eventIDs(r.Events))
	}

	clk := clock.NewVirtual(start.Add(6 * time.Minute))
	s := newSharedStack(t, openBolt(t), clk, evs, emulator.WithDeliveryDelay(5*time.Minute))
	s.integration(t, demoSettings)
	ctx := context.Background()
	var ids []string
	var states []workflow.State
	for _, a := range actions {
		r, err := s.eng.CreateRun(ctx, "it", a, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
		st, err := s.eng.Begin(ctx, workflow.State{RunID: r.RunID})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	first, err := s.eng.Fetch(ctx, states[0])
	if err != nil {
		t.Fatal(err)
	}
	if first.APICalls == 0 {
		t.Fatalf("the first run made no call")
	}
	clk.Set(clk.Now().Add(5 * time.Second))
	second, err := s.eng.Fetch(ctx, states[1])
	if err != nil {
		t.Fatal(err)
	}
	if second.APICalls != 0 || s.emu.Stats().Calls != first.APICalls {
		t.Errorf("the second run made %d calls (emulator saw %d, the first run %d): its span was read 5 s before",
			second.APICalls, s.emu.Stats().Calls, first.APICalls)
	}

	if err := s.eng.Simulate(ctx, clk, ids...); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, id := range ids {
		r, err := s.store.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != core.StatusCompleted {
			t.Errorf("run %s: status %s (%s)", actions[i].ActionID, r.Status, r.Error)
		}
		if diff := cmp.Diff(want[i], eventIDs(r.Events)); diff != "" {
			t.Errorf("run %s: matched events with shared reads (-alone +shared):\n%s", actions[i].ActionID, diff)
		}
		total += r.APICalls
	}
	if calls := s.emu.Stats().Calls; calls != total || total >= soloCalls {
		t.Errorf("shared: the runs count %d calls, the emulator saw %d; alone they made %d", total, calls, soloCalls)
	}
}

// syntheticEvents makes n events in [from, from+n s) whose user agents carry tok-0 .. tok-(k-1) in turn.
func syntheticEvents(from time.Time, n, k int) []core.RawEvent {
	var out []core.RawEvent
	for i := range n {
		at := from.Add(time.Duration(i) * time.Second).UTC().Truncate(time.Second)
		rec := fmt.Sprintf(`{"eventVersion":"1.09","eventID":"ev-%04d","eventTime":%q,"eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","userAgent":"tool tok-%d","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u"},"recipientAccountId":"111122223333","eventType":"AwsApiCall","managementEvent":true,"eventCategory":"Management"}`,
			i, at.Format(time.RFC3339), i%k)
		out = append(out, core.RawEvent{EventID: fmt.Sprintf("ev-%04d", i), EventTime: at, Record: []byte(rec)})
	}
	return out
}

// TestSharedReadsLeaseContention: several fetch handlers of runs of one integration run at once
// (goroutines, the real clock, a slow CloudTrail), on bolt and on DynamoDB Local: the span is read
// by one set of calls, nobody waits a query interval, and each run gets its own events.
func TestSharedReadsLeaseContention(t *testing.T) {
	for _, kind := range []string{"bolt", "dynamo"} {
		t.Run(kind, func(t *testing.T) {
			var st core.Store
			if kind == "bolt" {
				st = openBolt(t)
			} else {
				st = openDynamo(t)
			}
			const runs, tokens = 6, 6
			now := time.Now().UTC()
			evs := syntheticEvents(now.Add(-3*time.Minute), 36, tokens)
			s := newSharedStack(t, st, clock.Real{}, evs, emulator.WithFaults(emulator.Faults{Slow: 300 * time.Millisecond}))
			in := s.integration(t, `{"name":"t","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"test-secret-value","queryInterval":10,"settleTime":1}`)
			ctx := context.Background()
			var states []workflow.State
			for i := range runs {
				r, err := s.eng.CreateRun(ctx, "it", &core.Action{JobID: "j", ActionID: fmt.Sprint(i), StartTime: now.Add(-2 * time.Minute),
					Actor: core.Actor{UserAgentToken: fmt.Sprintf("tok-%d", i%tokens)}}, "")
				if err != nil {
					t.Fatal(err)
				}
				st, err := s.eng.Begin(ctx, workflow.State{RunID: r.RunID})
				if err != nil {
					t.Fatal(err)
				}
				states = append(states, st)
			}
			var wg sync.WaitGroup
			took := make([]time.Duration, runs)
			outs := make([]workflow.State, runs)
			errs := make([]error, runs)
			for i := range runs {
				wg.Go(func() {
					t0 := time.Now()
					outs[i], errs[i] = s.eng.Fetch(ctx, states[i])
					took[i] = time.Since(t0)
				})
			}
			wg.Wait()
			calls := 0
			for i := range runs {
				if errs[i] != nil {
					t.Fatalf("fetch %d: %v", i, errs[i])
				}
				if took[i] >= in.QueryIntervalD() {
					t.Errorf("fetch %d took %s, more than the query interval %s", i, took[i], in.QueryIntervalD())
				}
				calls += outs[i].APICalls
			}
			if got := s.emu.Stats().Calls; got != 1 || calls != 1 {
				t.Errorf("%d concurrent fetches made %d calls (they count %d), want one", runs, got, calls)
			}
			for i := range runs {
				c, err := s.eng.Correlate(ctx, outs[i])
				if err != nil {
					t.Fatal(err)
				}
				r, _ := st.GetRun(ctx, c.RunID)
				var want []string
				for j, e := range evs {
					if j%tokens == i%tokens {
						want = append(want, e.EventID)
					}
				}
				sort.Strings(want)
				if diff := cmp.Diff(want, eventIDs(r.Events)); diff != "" {
					t.Errorf("run %d: matched events (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// failingLedger is a bolt store whose ledger writes fail while fail is set: a crash after the
// events were stored and before the read was recorded.
type failingLedger struct {
	*bolt.Store
	fail bool
}

func (f *failingLedger) PutLedger(ctx context.Context, l *core.Ledger) error {
	if f.fail && len(l.Spans) > 0 { // the write that records a read, not the run's registration
		return fmt.Errorf("injected crash before the ledger write")
	}
	return f.Store.PutLedger(ctx, l)
}

// TestSharedReadsCrashBetweenWrites: a fetch that dies after storing events and before recording
// the read is repeated: it reads again, stores no duplicate, and the run ends with its events.
func TestSharedReadsCrashBetweenWrites(t *testing.T) {
	evs := demoEvents(t)
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	b, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st := &failingLedger{Store: b, fail: true}
	clk := clock.NewVirtual(start.Add(6 * time.Minute))
	s := newSharedStack(t, st, clk, evs, emulator.WithDeliveryDelay(5*time.Minute))
	in := s.integration(t, demoSettings)
	ctx := context.Background()
	r, err := s.eng.CreateRun(ctx, "it", &core.Action{JobID: "j", ActionID: "a", StartTime: start,
		Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}}, "r1")
	if err != nil {
		t.Fatal(err)
	}
	bs, err := s.eng.Begin(ctx, workflow.State{RunID: r.RunID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Fetch(ctx, bs); err == nil {
		t.Fatal("the fetch succeeded through a failing ledger write")
	}
	part := workflow.SharedPartition(workflow.StreamKey("it", in.AWSRegion, core.CategoryManagement, nil))
	stored, err := core.CollectRawEvents(st.RawEvents(ctx, part, time.Time{}, time.Time{}))
	if err != nil || len(stored) == 0 {
		t.Fatalf("the failed fetch stored %d events (%v): it should have stored them before failing", len(stored), err)
	}
	st.fail = false
	again, err := s.eng.Fetch(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	if again.APICalls == 0 {
		t.Errorf("the repeated fetch made no call: the ledger never recorded the first read")
	}
	after, _ := core.CollectRawEvents(st.RawEvents(ctx, part, time.Time{}, time.Time{}))
	if len(after) != len(stored) {
		t.Errorf("the repeat stored %d events, the crashed fetch %d: same span, same events", len(after), len(stored))
	}
	if err := s.eng.Simulate(ctx, clk, r.RunID); err != nil {
		t.Fatal(err)
	}
	r, _ = st.GetRun(ctx, r.RunID)
	solo := newStack(t, evs, start.Add(6*time.Minute))
	solo.integration(t, demoSettings)
	want := solo.run(t, &core.Action{JobID: "j", ActionID: "a", StartTime: start, Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}})
	if diff := cmp.Diff(eventIDs(want.Events), eventIDs(r.Events)); diff != "" || r.Status != core.StatusCompleted {
		t.Errorf("status %s; matched events (-alone +after crash):\n%s", r.Status, diff)
	}
}

// TestSharedReadsDeadHolder: a run that took a stream's lease and died leaves it held; the next
// fetch waits at most one query interval, then reads for itself.
func TestSharedReadsDeadHolder(t *testing.T) {
	evs := demoEvents(t)
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(start.Add(6 * time.Minute))
	st := openBolt(t)
	s := newSharedStack(t, st, clk, evs, emulator.WithDeliveryDelay(5*time.Minute))
	in := s.integration(t, demoSettings)
	ctx := context.Background()
	stream := workflow.StreamKey("it", in.AWSRegion, core.CategoryManagement, nil)
	if _, ok, err := st.AcquireLease(ctx, stream, "dead-run", clk.Now(), time.Hour); err != nil || !ok {
		t.Fatalf("cannot plant a lease: %v", err)
	}
	r, err := s.eng.CreateRun(ctx, "it", &core.Action{JobID: "j", ActionID: "a", StartTime: start,
		Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	bs, err := s.eng.Begin(ctx, workflow.State{RunID: r.RunID})
	if err != nil {
		t.Fatal(err)
	}
	before := clk.Now()
	out, err := s.eng.Fetch(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	waited := clk.Now().Sub(before)
	if out.APICalls == 0 {
		t.Errorf("the fetch made no call behind a dead holder")
	}
	if waited > in.QueryIntervalD()+5*time.Second || waited < in.QueryIntervalD() {
		t.Errorf("the fetch waited %s behind a dead holder, want about one query interval (%s)", waited, in.QueryIntervalD())
	}
}
