package workflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/push"
	"github.com/trailproof/trailproof/internal/workflow"
)

// fullCorrelation correlates at once every raw event stored for run r: its streams' partitions
// and the push partitions of every account they name or the integration knows, one copy per
// EventID (LookupEvents' own when both exist), oldest first. It is how every correlate step
// worked before steps examined only what is new, and what each step's result must still equal.
func fullCorrelation(t testing.TB, st core.Store, integ *core.Integration, r *core.Run) core.Correlation {
	t.Helper()
	ctx := context.Background()
	cor := core.NewCorrelator(integ, &r.Action)
	read := cor.ReadRange()
	collect := func(p string) []core.RawEvent {
		evs, err := core.CollectRawEvents(st.RawEvents(ctx, p, read.From, read.To))
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	var all []core.RawEvent
	for _, p := range workflow.Partitions(integ, r) {
		all = append(all, collect(p)...)
	}
	accounts := map[string]bool{}
	for _, ev := range all {
		accounts[push.AccountOf(ev)] = true
	}
	sensors, err := st.ListSensors(ctx, integ.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sensors {
		accounts[s.AccountID] = true
	}
	seen := map[string]bool{}
	for _, ev := range all {
		seen[ev.EventID] = true
	}
	for a := range accounts {
		for _, region := range append(integ.QueryRegions(&r.Action), integ.AWSRegion) {
			for _, ev := range collect(push.Partition(a, region, core.CategoryManagement)) {
				if !seen[ev.EventID] {
					seen[ev.EventID] = true
					all = append(all, ev)
				}
			}
		}
	}
	core.SortRawEvents(all)
	return cor.Correlate(all)
}

// sameCorrelation is an observer that, after every correlate step of any run, compares the
// verdict the step stored with fullCorrelation over what is stored then. It counts the steps
// compared and the raw events the runs' steps examined against those a full correlation reads.
type sameCorrelation struct {
	t                  testing.TB
	st                 core.Store
	steps              int
	examined, fullRead int
}

func (c *sameCorrelation) observe(step string, in, out workflow.State) {
	if step != workflow.StepCorrelate {
		return
	}
	t, ctx := c.t, context.Background()
	r, err := c.st.GetRun(ctx, out.RunID)
	if err != nil {
		t.Fatal(err)
	}
	integ, err := c.st.GetIntegration(ctx, r.IntegrationID)
	if err != nil {
		t.Fatal(err)
	}
	full := fullCorrelation(t, c.st, integ, r)
	c.steps++
	c.examined += out.RawEvents - in.RawEvents
	for _, p := range workflow.Partitions(integ, r) {
		evs, _ := core.CollectRawEvents(c.st.RawEvents(ctx, p, r.Window.From.Add(-time.Hour), r.Window.To.Add(time.Hour)))
		c.fullRead += len(evs)
	}
	got := core.Correlation{Events: r.Events, Suspicious: r.Suspicious, Expected: r.Expected, Logged: r.IsLogged(),
		Truncated: r.Truncated, WeakMatch: r.WeakMatch, Matched: r.Progress.Correlated.Matched, Unkept: r.Unkept}
	want := full
	want.Warnings, want.Added = nil, 0
	if !integ.SaveSuspiciousEvents {
		want.Suspicious = nil
	}
	if integ.DiscoverNetworkDevices {
		got.Sensors = r.Sensors
	} else {
		want.Sensors = nil
	}
	opts := gocmp.Options{cmpopts.EquateEmpty(),
		gocmp.Comparer(func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }),
		// Which copy of a matched event came from a push is the step's bookkeeping.
		cmpopts.IgnoreFields(core.Unkept{}, "Pushed"), cmpopts.IgnoreFields(core.Beyond{}, "Pushed")}
	if diff := gocmp.Diff(want, got, opts); diff != "" {
		t.Fatalf("run %s, correlate step after query %d: stored verdict differs from correlating everything stored (-all at once +step):\n%s",
			r.ActionID, r.Queries, diff)
	}
	for _, w := range full.Warnings {
		if !slices.Contains(r.Warnings, w) {
			t.Errorf("run %s: warning %q of the full correlation missing from %q", r.ActionID, w, r.Warnings)
		}
	}
}

// TestCorrelatedOnce: for every correlate step of runs over the real Stratus records (a busy
// background, suspicious events, expected events), under late delivery (5m,12m@0.1), with runs
// of one integration sharing reads, with push, and with a limit that cuts the matched events,
// the verdict the step stored equals correlating everything stored at once; and the steps examine
// fewer raw events in all than one full correlation per step would read.
func TestCorrelatedOnce(t *testing.T) {
	all, pool := busyCorpus(t)
	dets := detonations(t)
	late, err := emulator.ParseDelays("5m,12m@0.1")
	if err != nil {
		t.Fatal(err)
	}
	pick := []detonation{dets[0], dets[3], dets[11], dets[20], dets[34]}
	type scenario struct {
		name     string
		settings string
		emu      []emulator.Option
		runs     int // concurrent runs of one integration (the picked detonations, staggered)
		push     bool
		expected bool
		limit    bool
	}
	for _, sc := range []scenario{
		{name: "stratus", settings: `,"saveSuspiciousEvents":true`, runs: 1, expected: true},
		{name: "late delivery", emu: []emulator.Option{emulator.WithDeliveryDelays(late)}, runs: 1},
		{name: "shared reads", settings: `,"saveSuspiciousEvents":true`, runs: len(pick), expected: true},
		{name: "push", runs: 1, push: true},
		{name: "limit", settings: `,"limit":3`, runs: 2, limit: true},
	} {
		t.Run(sc.name, func(t *testing.T) {
			start := pick[0].first.Add(-10 * time.Second)
			account := push.AccountOf(all[slices.IndexFunc(all, func(ev core.RawEvent) bool { return ev.EventID == pick[0].ids[0] })])
			world := append(slices.Clone(all), busyBackground(t, pool, pick[0], account, start)...)
			// Every picked detonation moved near the first, so the runs share their reads.
			for i, d := range pick[1:sc.runs] {
				shift := start.Add(time.Duration(i+1) * 40 * time.Second).Sub(d.first)
				for j := range world {
					if slices.Contains(d.ids, world[j].EventID) {
						world[j].EventTime = world[j].EventTime.Add(shift)
					}
				}
			}
			clk := clock.NewVirtual(start)
			_, url := serveEmulator(t, clk, world, append([]emulator.Option{emulator.WithDeliveryDelay(5 * time.Minute), emulator.WithSeed(42),
				emulator.WithKeys(emulator.Key{AccessKeyID: "AKIATESTTESTTEST0001", SecretAccessKey: "test-secret-value", AccountID: account})}, sc.emu...)...)
			base := openBolt(t)
			storeIntegration(t, base, url, strings.TrimSuffix(baseSettings, "}")+sc.settings+`,"discoverNetworkDevices":true}`)
			check := &sameCorrelation{t: t, st: base}
			var st core.Store = base
			opts := []workflow.Option{workflow.WithClock(clk), workflow.WithAlertCompiler(alerts.Compiler()), workflow.WithObserver(check.observe)}
			if sc.push {
				feed, err := push.NewFeed(world, func(ev core.RawEvent) (string, string) { return push.AccountOf(ev), "us-east-1" }, 30*time.Second, 0.05)
				if err != nil {
					t.Fatal(err)
				}
				st = &push.Store{Store: base, Feed: feed, Now: clk.Now}
				opts = append(opts, workflow.WithPush())
			}
			eng := workflow.New(st, testSources(clk), opts...)
			ctx := context.Background()
			var ids []string
			for i, d := range pick[:sc.runs] {
				a := &core.Action{JobID: "j", ActionID: d.name, StartTime: start.Add(time.Duration(i) * 40 * time.Second), Actor: core.Actor{UserAgentToken: d.token}}
				if sc.expected {
					a.ExpectedEvents = d.names[:1]
				}
				if sc.limit && i == 1 {
					a.Actor = core.Actor{} // expected event names only: the busy background matches too
					a.ExpectedEvents = []string{"ec2.amazonaws.com:DescribeInstances", d.names[0]}
				}
				r, err := eng.CreateRun(ctx, "it", a, "")
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.RunID)
			}
			if err := eng.Simulate(ctx, clk, ids...); err != nil {
				t.Fatal(err)
			}
			truncated := false
			for _, id := range ids {
				r, err := base.GetRun(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != core.StatusCompleted || r.Verdict != core.VerdictLogged {
					t.Errorf("run %s: status %s verdict %s (%s)", r.ActionID, r.Status, r.Verdict, r.Error)
				}
				truncated = truncated || r.Truncated
			}
			if sc.limit && !truncated {
				t.Error("no run reached the limit: the scenario shows nothing")
			}
			if check.steps < 3*sc.runs {
				t.Fatalf("%d correlate steps compared for %d runs", check.steps, sc.runs)
			}
			// Each step examines the reads logged since the run's last one (a span read again is
			// examined again, and each run examines the reads the others shared with it), never
			// everything stored; the benchmark shows the work is linear in the events read.
			if check.examined >= check.fullRead {
				t.Errorf("the steps examined %d raw events in all; full correlations would have read %d", check.examined, check.fullRead)
			}
			t.Logf("%d correlate steps: examined %d raw events, full correlations would read %d", check.steps, check.examined, check.fullRead)
		})
	}
}
