// Command benchscale measures what many concurrent runs of one integration cost in LookupEvents
// calls, on a virtual clock against the CloudTrail emulator (2 calls per second per key and
// region; events delivered -delivery-delay late, 5 minutes by default, or by a distribution such
// as 5m,12m@0.1): trailproof's shared reads, next to the integration guide's sliding window at
// its most honest (one window per integration shared by all its runs, at delayTime 0, 5 and 15),
// and the one-read lower bound (each event of the runs' windows read once). It prints one JSON
// line per number of runs, with trailproof's calls as ratios against the best baseline (highest
// recall, then fewest calls) and the lower bound. `make bench-scale` runs it.
//
// The corpus: the Stratus Red Team detonation logs (one action per detonation, its user-agent token
// as the actor) over the TrailDiscover records as background, from ../shared/data/cloudtrail; when
// they are absent, the demo corpus (examples/demo/cloudtrail.json) with its one action. For N runs,
// action i replays detonation i mod D with its events renamed (new event IDs and user-agent token),
// so every run has events of its own, and moved in time so that the N actions start within
// -spread of each other: their windows overlap. The background is spread evenly over the whole
// span. Recall counts, over all runs, the share of each action's own events its run matched;
// verdict latency runs from when the action's last event became searchable to its verdict.
//
// Every scheme gets the same expectedEvents: the detonation's event names (-expected, the
// default), so that runs complete once each has matched, as the Director's actions do; with
// -expected=false trailproof polls until the window's end plus settleTime and the guide's window
// until it has read every window of the action.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/benchcorpus"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/push"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

const settings = `{"name":"bench","awsRegion":"us-east-1","accessKeyId":"AKIABENCHBENCH000001","secretAccessKey":"bench-secret-value-0000"}`

// benchAccount is the account of the integration's key: the emulator serves it every record of
// the corpus, whatever account recorded it, so with push each record is pushed from this account,
// as CloudTrail sends an account's events to that account's default bus, and
// sts:GetCallerIdentity names it.
const benchAccount = "123456789012"

// action is one replayed action: its renamed events and what its run must match.
type action struct {
	a       core.Action
	ids     map[string]bool
	visible time.Time // when the last of its events becomes searchable
}

// Result is one JSON line.
type Result struct {
	Runs                     int     `json:"runs"`
	Corpus                   string  `json:"corpus"`
	ExpectedEvents           bool    `json:"expectedEvents"`
	Delivery                 string  `json:"delivery"`
	APICalls                 int     `json:"apiCalls"`
	APICallsPerRun           float64 `json:"apiCallsPerRun"`
	Throttled                int     `json:"throttled"`
	FailedRuns               int     `json:"failedRuns"`
	Recall                   float64 `json:"recall"`
	ExactRuns                int     `json:"exactRuns"` // runs whose matched events are exactly their action's
	VerdictLatencyP50Seconds float64 `json:"verdictLatencyP50Seconds"`
	VerdictLatencyMaxSeconds float64 `json:"verdictLatencyMaxSeconds"`
	MaxCallsPerSecond        int     `json:"maxCallsPerSecond"`
	// Push (-push-delay): EventBridge's delay and loss, and the time from each action's first
	// event to its run's loggedAt.
	Push                    string  `json:"push,omitempty"`
	LoggedAfterFirstP50Secs float64 `json:"loggedAfterFirstEventP50Seconds"`
	LoggedAfterFirstMaxSecs float64 `json:"loggedAfterFirstEventMaxSeconds"`
	VirtualSeconds          float64 `json:"virtualSeconds"`
	// Baselines are the guide's sliding window, one per integration, at each delayTime.
	Baselines []Baseline `json:"baselines"`
	// BestBaseline is the delayTime (minutes) of the baseline with the highest recall, then the
	// fewest calls; CallsVsBestBaseline is trailproof's calls per run over its.
	BestBaseline          float64 `json:"bestBaselineDelayTimeMinutes"`
	CallsVsBestBaseline   float64 `json:"callsVsBestBaseline"`
	LowerBoundCallsPerRun float64 `json:"lowerBoundCallsPerRun"`
	CallsVsLowerBound     float64 `json:"callsVsLowerBound"`
}

// Baseline is what one shared sliding window did for all the runs.
type Baseline struct {
	DelayTimeMinutes         float64 `json:"delayTimeMinutes"`
	APICalls                 int     `json:"apiCalls"`
	APICallsPerRun           float64 `json:"apiCallsPerRun"`
	Throttled                int     `json:"throttled"`
	Recall                   float64 `json:"recall"`
	VerdictLatencyP50Seconds float64 `json:"verdictLatencyP50Seconds"`
	VerdictLatencyMaxSeconds float64 `json:"verdictLatencyMaxSeconds"`
	MaxCallsPerSecond        int     `json:"maxCallsPerSecond"`
}

func main() {
	delivery := emulator.FixedDelay(5 * time.Minute)
	var (
		data     = flag.String("data", "", "folder of the shared CloudTrail records (default: ../shared/data/cloudtrail beside the repository)")
		demo     = flag.String("demo", "examples/demo/cloudtrail.json", "the demo corpus, used when the shared records are absent")
		ns       = flag.String("n", "1,10,50", "numbers of concurrent runs, comma-separated")
		spread   = flag.Duration("spread", time.Minute, "the actions start within this span")
		expected = flag.Bool("expected", true, "give each action its detonation's event names as expectedEvents (every scheme gets the same)")
	)
	flag.Var(&delivery, "delivery-delay", "time from an event to its being searchable: a `delay` (5m), or most records' delay and late shares (5m,12m@0.1)")
	flag.DurationVar(&pushDelay, "push-delay", 0, "also push each record as EventBridge would, this `delay` after its eventTime (0: no push)")
	flag.Float64Var(&pushLoss, "push-loss", 0, "with -push-delay: the `fraction` of pushes lost, chosen per EventId")
	flag.Parse()
	if err := run(*data, *demo, *ns, *spread, delivery, *expected); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

// pushDelay and pushLoss are the -push-delay and -push-loss flags.
var (
	pushDelay time.Duration
	pushLoss  float64
)

// baselineDelayTimes are the guide's delayTime settings the baseline is measured with.
var baselineDelayTimes = []time.Duration{0, 5 * time.Minute, 15 * time.Minute}

func run(data, demo, ns string, spread time.Duration, delivery emulator.Delays, expected bool) error {
	templates, background, name, err := loadCorpus(data, demo)
	if err != nil {
		return err
	}
	var counts []int
	for _, s := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-n: %q is not a number of runs", s)
		}
		counts = append(counts, n)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, n := range counts {
		actions, events := replay(templates, background, n, spread, delivery, expected)
		res := Result{Runs: n, Corpus: name, ExpectedEvents: expected, Delivery: delivery.String()}
		if err := shared(&res, actions, events, delivery); err != nil {
			return fmt.Errorf("%d runs, shared reads: %w", n, err)
		}
		var best *Baseline
		for _, d := range baselineDelayTimes {
			b, err := baseline(actions, events, delivery, d)
			if err != nil {
				return fmt.Errorf("%d runs, baseline delayTime %s: %w", n, d, err)
			}
			res.Baselines = append(res.Baselines, b)
		}
		for i := range res.Baselines {
			b := &res.Baselines[i]
			if best == nil || b.Recall > best.Recall || b.Recall == best.Recall && b.APICallsPerRun < best.APICallsPerRun {
				best = b
			}
		}
		res.BestBaseline = best.DelayTimeMinutes
		if best.APICallsPerRun > 0 {
			res.CallsVsBestBaseline = round(res.APICallsPerRun / best.APICallsPerRun)
		}
		lb, err := lowerBound(actions, events, delivery)
		if err != nil {
			return fmt.Errorf("%d runs, lower bound: %w", n, err)
		}
		res.LowerBoundCallsPerRun = round(float64(lb) / float64(n))
		res.CallsVsLowerBound = round(float64(res.APICalls) / float64(lb))
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// loadCorpus returns the action templates and the background records.
func loadCorpus(data, demo string) ([]benchcorpus.Template, []core.RawEvent, string, error) {
	data = benchcorpus.DataDir(data)
	if _, err := os.Stat(benchcorpus.DetonationsDir(data)); err == nil {
		ts, bg, err := benchcorpus.Load(data)
		return ts, bg, "stratus-red-team+traildiscover", err
	}
	fmt.Fprintf(os.Stderr, "benchscale: the shared CloudTrail records are not at %s; replaying the demo corpus %s instead\n", data, demo)
	b, err := os.ReadFile(demo)
	if err != nil {
		return nil, nil, "", fmt.Errorf("no corpus: %w", err)
	}
	all, err := corpus.Parse(demo, b)
	if err != nil {
		return nil, nil, "", err
	}
	const token = "stratus-red-team_3f2a9c1e-5b7d-4e8a-9c0f-1d2e3f4a5b6c"
	demoStart := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	var mine, bg []core.RawEvent
	for _, e := range all {
		// The demo action starts at 14:00:00; an earlier call with its token is a decoy outside
		// the window, left in the background.
		if strings.Contains(gjson.GetBytes(e.Record, "userAgent").String(), token) && !e.EventTime.Before(demoStart) {
			mine = append(mine, e)
		} else {
			bg = append(bg, e)
		}
	}
	return []benchcorpus.Template{benchcorpus.TemplateOf("demo", mine, token)}, bg, "demo", nil
}

// base is when the replayed actions start.
var base = time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)

// replay builds n actions and the corpus they run against.
func replay(ts []benchcorpus.Template, background []core.RawEvent, n int, spread time.Duration, delivery emulator.Delays, expected bool) ([]action, []core.RawEvent) {
	var actions []action
	var events []core.RawEvent
	for i := range n {
		t := ts[i%len(ts)]
		start := base.Add(time.Duration(i) * spread / time.Duration(n))
		r := t.ReplayAction(start, fmt.Sprintf("-run%03d", i), "bench", fmt.Sprintf("%s#%d", t.Name, i), expected, delivery)
		events = append(events, r.Events...)
		actions = append(actions, action{a: r.Action, ids: r.IDs, visible: r.Visible})
	}
	// The background covers the actions' windows and their settle time.
	lo, hi := base.Add(-15*time.Minute), base.Add(spread+25*time.Minute)
	step := hi.Sub(lo) / time.Duration(max(len(background), 1))
	for k, e := range background {
		events = append(events, benchcorpus.Moved(e, lo.Add(time.Duration(k)*step).Truncate(time.Second), e.EventID))
	}
	return actions, events
}

// world is an emulator on a virtual clock and a Factory sharing that clock (one in-process rate
// limiter per key and region, as in serve).
type world struct {
	clk *clock.Virtual
	emu *emulator.Emulator
	srv *emulator.Server
	f   *cloudtrail.Factory
}

func newWorld(events []core.RawEvent, delivery emulator.Delays, start time.Time) (*world, error) {
	w := &world{clk: clock.NewVirtual(start)}
	var err error
	w.emu, err = emulator.New(events, emulator.WithClock(w.clk), emulator.WithDeliveryDelays(delivery), emulator.WithSeed(1),
		emulator.WithKeys(emulator.Key{AccessKeyID: "AKIABENCHBENCH000001", SecretAccessKey: "bench-secret-value-0000", AccountID: benchAccount}))
	if err != nil {
		return nil, err
	}
	if w.srv, err = emulator.Serve(w.emu, ""); err != nil {
		return nil, err
	}
	// The benchmark's own emulator is the one endpoint it allows.
	w.f = cloudtrail.NewFactory(context.Background(), cloudtrail.WithClock(w.clk), cloudtrail.WithLogger(slog.New(slog.DiscardHandler)),
		cloudtrail.WithPolicy(netguard.MustNew([]string{w.srv.URL()}, nil)))
	return w, nil
}

func (w *world) maxPerSecond() int {
	most := 0
	for _, ks := range w.emu.Stats().PerKey {
		most = max(most, ks.MaxPerSecond)
	}
	return most
}

func (w *world) throttled() int {
	s := w.emu.Stats()
	return s.ThrottledRate + s.ThrottledFault
}

// shared replays the actions as concurrent runs with shared reads.
func shared(res *Result, actions []action, events []core.RawEvent, delivery emulator.Delays) error {
	ctx := context.Background()
	start := actions[0].a.StartTime
	w, err := newWorld(events, delivery, start)
	if err != nil {
		return err
	}
	defer w.srv.Close()
	dir, err := os.MkdirTemp("", "benchscale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := bolt.Open(filepath.Join(dir, "bench.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	in, err := core.ParseIntegration([]byte(settings))
	if err != nil {
		return err
	}
	in.ID, in.Endpoint = "bench", w.srv.URL()
	if err := st.CreateIntegration(ctx, in); err != nil {
		return err
	}
	var store core.Store = st
	if pushDelay > 0 {
		// The anonymised regions of the Stratus records are served to every region: pushed
		// from the integration's, and from its account (benchAccount).
		feed, err := push.NewFeed(events, func(core.RawEvent) (string, string) { return benchAccount, in.AWSRegion }, pushDelay, pushLoss)
		if err != nil {
			return err
		}
		store = &push.Store{Store: st, Feed: feed, Now: w.clk.Now}
		res.Push = fmt.Sprintf("%s, %g lost", pushDelay, pushLoss)
	}
	opts := []workflow.Option{workflow.WithClock(w.clk)}
	if pushDelay > 0 {
		opts = append(opts, workflow.WithPush()) // as serve and EnablePush set it
	}
	eng := workflow.New(store, w.f, opts...)
	var ids []string
	for i := range actions {
		r, err := eng.CreateRun(ctx, in.ID, &actions[i].a, fmt.Sprintf("run-%03d", i))
		if err != nil {
			return err
		}
		ids = append(ids, r.RunID)
	}
	if err := eng.Simulate(ctx, w.clk, ids...); err != nil {
		return err
	}
	var lat, logged []float64
	firstAt := map[string]time.Time{}
	for _, ev := range events {
		firstAt[ev.EventID] = ev.EventTime
	}
	total, found := 0, 0
	for i, id := range ids {
		r, err := st.GetRun(ctx, id)
		if err != nil {
			return err
		}
		res.APICalls += r.APICalls
		res.Throttled += r.Throttled
		if r.Status != core.StatusCompleted {
			res.FailedRuns++
			fmt.Fprintf(os.Stderr, "benchscale: run %s ended %s: %s\n", r.ActionID, r.Status, r.Error)
		}
		got := 0
		for _, e := range r.Events {
			if actions[i].ids[e.EventID] {
				got++
			}
		}
		total += len(actions[i].ids)
		found += got
		if got == len(actions[i].ids) && len(r.Events) == got {
			res.ExactRuns++
		}
		if r.CompletedAt != nil {
			lat = append(lat, r.CompletedAt.Sub(actions[i].visible).Seconds())
		}
		if r.LoggedAt != nil {
			first := r.LoggedAt.Add(time.Hour)
			for id := range actions[i].ids {
				if t := firstAt[id]; t.Before(first) {
					first = t
				}
			}
			logged = append(logged, r.LoggedAt.Sub(first).Seconds())
		}
	}
	res.APICallsPerRun = round(float64(res.APICalls) / float64(len(ids)))
	res.Recall = round(float64(found) / float64(total))
	res.MaxCallsPerSecond = w.maxPerSecond()
	res.Throttled = max(res.Throttled, w.throttled())
	res.VirtualSeconds = w.clk.Now().Sub(start).Seconds()
	res.VerdictLatencyP50Seconds, res.VerdictLatencyMaxSeconds = percentiles(lat)
	res.LoggedAfterFirstP50Secs, res.LoggedAfterFirstMaxSecs = percentiles(logged)
	return nil
}

// baseline replays the actions with the integration guide's sliding window at its most honest:
// one window per integration shared by all its runs. From the first action's start plus delayTime,
// every queryInterval while some action is still open, one query reads [now-delayTime-queryTime,
// now-delayTime]; each open action takes the events carrying its token within its own window
// [start-queryTime, start+queryTime]. An action is open from its start+delayTime until every one of
// its window has been read (the slide's top reaches start+queryTime), or, with expectedEvents, until each of its
// expected event names has matched, as the Director does.
func baseline(actions []action, events []core.RawEvent, delivery emulator.Delays, delayTime time.Duration) (Baseline, error) {
	ctx := context.Background()
	res := Baseline{DelayTimeMinutes: delayTime.Minutes()}
	start := actions[0].a.StartTime
	w, err := newWorld(events, delivery, start)
	if err != nil {
		return res, err
	}
	defer w.srv.Close()
	in, err := core.ParseIntegration([]byte(settings))
	if err != nil {
		return res, err
	}
	in.ID, in.Endpoint = "bench", w.srv.URL()
	src, err := w.f.Source(ctx, in)
	if err != nil {
		return res, err
	}
	qt, iv := in.QueryTimeD(), in.QueryIntervalD()
	found := make([]map[string]bool, len(actions))
	names := make([]map[string]bool, len(actions))
	done := make([]time.Time, len(actions))
	for i := range actions {
		found[i], names[i] = map[string]bool{}, map[string]bool{}
	}
	for now := start.Add(delayTime); ; now = now.Add(iv) {
		var open []int
		for i := range actions {
			if done[i].IsZero() && !now.Before(actions[i].a.StartTime.Add(delayTime)) {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			if !slices.ContainsFunc(done, time.Time.IsZero) {
				break
			}
			continue
		}
		w.clk.Set(now)
		r, err := src.Lookup(ctx, core.Query{Region: in.AWSRegion, From: now.Add(-delayTime - qt), To: now.Add(-delayTime), Budget: in.QueryBudget()})
		res.APICalls += r.Calls
		res.Throttled += r.Throttled
		var te *cloudtrail.ThrottledError
		if err != nil && !errors.As(err, &te) {
			return res, err
		}
		for _, i := range open {
			a := &actions[i].a
			win := core.Window{From: a.StartTime.Add(-qt), To: a.StartTime.Add(qt)}
			for _, e := range r.Events {
				if !win.Contains(e.EventTime) || !strings.Contains(gjson.GetBytes(e.Record, "userAgent").String(), a.Actor.UserAgentToken) {
					continue
				}
				names[i][gjson.GetBytes(e.Record, "eventSource").String()+":"+gjson.GetBytes(e.Record, "eventName").String()] = true
				if actions[i].ids[e.EventID] {
					found[i][e.EventID] = true
				}
			}
			allExpected := len(a.ExpectedEvents) > 0 && !slices.ContainsFunc(a.ExpectedEvents, func(n string) bool { return !names[i][n] })
			if allExpected || !now.Add(-delayTime).Before(a.StartTime.Add(qt)) {
				done[i] = now
			}
		}
	}
	total, got := 0, 0
	var lat []float64
	for i := range actions {
		total += len(actions[i].ids)
		got += len(found[i])
		lat = append(lat, done[i].Sub(actions[i].visible).Seconds())
	}
	res.APICallsPerRun = round(float64(res.APICalls) / float64(len(actions)))
	res.Recall = round(float64(got) / float64(cmp.Or(total, 1)))
	res.VerdictLatencyP50Seconds, res.VerdictLatencyMaxSeconds = percentiles(lat)
	res.MaxCallsPerSecond = w.maxPerSecond()
	res.Throttled = max(res.Throttled, w.throttled())
	return res, nil
}

// lowerBound is the fewest calls that read each event of the runs' windows once: one read of
// the union of the windows per region the runs query, once everything has been delivered
// (ceil(events / 50) calls, one when empty).
func lowerBound(actions []action, events []core.RawEvent, delivery emulator.Delays) (int, error) {
	ctx := context.Background()
	in, err := core.ParseIntegration([]byte(settings))
	if err != nil {
		return 0, err
	}
	qt := in.QueryTimeD()
	from, to := actions[0].a.StartTime.Add(-qt), actions[0].a.StartTime.Add(qt)
	regions := map[string]bool{}
	for i := range actions {
		a := &actions[i].a
		from, to = minTime(from, a.StartTime.Add(-qt)), maxTime(to, a.StartTime.Add(qt))
		for _, r := range in.QueryRegions(a) {
			regions[r] = true
		}
	}
	w, err := newWorld(events, delivery, to.Add(delivery.Max()))
	if err != nil {
		return 0, err
	}
	defer w.srv.Close()
	in.ID, in.Endpoint = "bench", w.srv.URL()
	src, err := w.f.Source(ctx, in)
	if err != nil {
		return 0, err
	}
	calls := 0
	for _, region := range slices.Sorted(maps.Keys(regions)) {
		r, err := src.Lookup(ctx, core.Query{Region: region, From: from, To: to})
		if err != nil {
			return 0, err
		}
		calls += r.Calls
	}
	return calls, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// percentiles returns the median and the largest of xs (0, 0 when empty).
func percentiles(xs []float64) (p50, most float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	sort.Float64s(xs)
	return xs[len(xs)/2], xs[len(xs)-1]
}
