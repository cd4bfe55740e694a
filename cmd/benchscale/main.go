// Command benchscale measures what many concurrent runs of one integration cost in LookupEvents
// calls, with trailproof's shared reads and with each run polling on its own by the integration
// guide's sliding window, on a virtual clock against the CloudTrail emulator (2 calls per second
// per key and region; events delivered -delivery-delay late, 1 minute by default so that the
// guide's window finds them too and both schemes are compared on the same matched events; with
// 5 minutes the guide's window never sees them). It prints one JSON line per number of runs.
// `make bench-scale` runs it.
//
// The corpus: the Stratus Red Team detonation logs (one action per detonation, its user-agent token
// as the actor) over the TrailDiscover records as background, from ../shared/data/cloudtrail; when
// they are absent, the demo corpus (examples/demo/cloudtrail.json) with its one action. For N runs,
// action i replays detonation i mod D with its events renamed (new event IDs and user-agent token),
// so every run has events of its own, and moved in time so that the N actions start within
// -spread of each other: their windows overlap. The background is spread evenly over the whole
// span. Recall counts, over all runs, the share of each action's own events its run matched.
//
// Runs carry their detonation's event names as expectedEvents (-expected, the default), so they
// complete once every expected event has matched and a further query found nothing new, as the
// Director's actions do; with -expected=false they poll until the window's end plus settleTime.
package main

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

const settings = `{"name":"bench","awsRegion":"us-east-1","accessKeyId":"AKIABENCHBENCH000001","secretAccessKey":"bench-secret-value-0000"}`

// template is one action's events, as recorded.
type template struct {
	name   string
	token  string
	events []core.RawEvent
	names  []string // eventSource:eventName, distinct
	first  time.Time
}

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
	DeliveryDelaySeconds     float64 `json:"deliveryDelaySeconds"`
	APICalls                 int     `json:"apiCalls"`
	APICallsPerRun           float64 `json:"apiCallsPerRun"`
	BaselineAPICalls         int     `json:"baselineApiCalls"`
	BaselineAPICallsPerRun   float64 `json:"baselineApiCallsPerRun"`
	CallsRatio               float64 `json:"callsRatio"` // baseline calls per run / shared calls per run
	Throttled                int     `json:"throttled"`
	BaselineThrottled        int     `json:"baselineThrottled"`
	FailedRuns               int     `json:"failedRuns"`
	Recall                   float64 `json:"recall"`
	ExactRuns                int     `json:"exactRuns"` // runs whose matched events are exactly their action's
	BaselineRecall           float64 `json:"baselineRecall"`
	VerdictLatencyP50Seconds float64 `json:"verdictLatencyP50Seconds"`
	VerdictLatencyMaxSeconds float64 `json:"verdictLatencyMaxSeconds"`
	MaxCallsPerSecond        int     `json:"maxCallsPerSecond"`
	BaselineMaxCallsPerSec   int     `json:"baselineMaxCallsPerSecond"`
	VirtualSeconds           float64 `json:"virtualSeconds"`
}

func main() {
	var (
		data     = flag.String("data", "", "folder of the shared CloudTrail records (default: ../shared/data/cloudtrail beside the repository)")
		demo     = flag.String("demo", "examples/demo/cloudtrail.json", "the demo corpus, used when the shared records are absent")
		ns       = flag.String("n", "1,10,50", "numbers of concurrent runs, comma-separated")
		spread   = flag.Duration("spread", time.Minute, "the actions start within this span")
		delivery = flag.Duration("delivery-delay", time.Minute, "time from an event to its being searchable (with 5m the guide's window never sees the events: its recall is 0)")
		expected = flag.Bool("expected", true, "give each action its detonation's event names as expectedEvents")
	)
	flag.Parse()
	if err := run(*data, *demo, *ns, *spread, *delivery, *expected); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

func run(data, demo, ns string, spread, delivery time.Duration, expected bool) error {
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
		res := Result{Runs: n, Corpus: name, ExpectedEvents: expected, DeliveryDelaySeconds: delivery.Seconds()}
		if err := shared(&res, actions, events, delivery); err != nil {
			return fmt.Errorf("%d runs, shared reads: %w", n, err)
		}
		if err := baseline(&res, actions, events, delivery); err != nil {
			return fmt.Errorf("%d runs, baseline: %w", n, err)
		}
		if res.APICallsPerRun > 0 {
			res.CallsRatio = round(res.BaselineAPICallsPerRun / res.APICallsPerRun)
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// loadCorpus returns the action templates and the background records.
func loadCorpus(data, demo string) ([]template, []core.RawEvent, string, error) {
	if data == "" {
		wd, _ := os.Getwd()
		data = filepath.Join(filepath.Dir(wd), "shared", "data", "cloudtrail")
	}
	dets := filepath.Join(data, "stratus-red-team", "docs", "detonation-logs")
	if _, err := os.Stat(dets); err == nil {
		files, _ := filepath.Glob(filepath.Join(dets, "*.json"))
		var ts []template
		for _, f := range files {
			evs, err := corpus.Load(f)
			if err != nil {
				return nil, nil, "", err
			}
			ts = append(ts, templateOf(strings.TrimSuffix(filepath.Base(f), ".json"), evs, ""))
		}
		bg, err := corpus.Load(filepath.Join(data, "traildiscover", "docs", "logExamples"))
		if err != nil {
			return nil, nil, "", err
		}
		return ts, bg, "stratus-red-team+traildiscover", nil
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
	return []template{templateOf("demo", mine, token)}, bg, "demo", nil
}

func templateOf(name string, evs []core.RawEvent, token string) template {
	t := template{name: name, token: token, events: evs, first: evs[0].EventTime}
	for _, e := range evs {
		ua := gjson.GetBytes(e.Record, "userAgent").String()
		for _, prefix := range []string{"stratus-red-team_", "grimoire_"} {
			if i := strings.Index(ua, prefix); i >= 0 && t.token == "" && len(ua) >= i+len(prefix)+36 {
				t.token = ua[i : i+len(prefix)+36]
			}
		}
		n := gjson.GetBytes(e.Record, "eventSource").String() + ":" + gjson.GetBytes(e.Record, "eventName").String()
		if !slices.Contains(t.names, n) {
			t.names = append(t.names, n)
		}
		if e.EventTime.Before(t.first) {
			t.first = e.EventTime
		}
	}
	return t
}

// base is when the replayed actions start.
var base = time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)

// replay builds n actions and the corpus they run against.
func replay(ts []template, background []core.RawEvent, n int, spread, delivery time.Duration, expected bool) ([]action, []core.RawEvent) {
	var actions []action
	var events []core.RawEvent
	for i := range n {
		t := ts[i%len(ts)]
		start := base.Add(time.Duration(i) * spread / time.Duration(n))
		shift := start.Add(10 * time.Second).Sub(t.first)
		token := fmt.Sprintf("%s-run%03d", t.token, i)
		act := action{ids: map[string]bool{}, a: core.Action{JobID: "bench", ActionID: fmt.Sprintf("%s#%d", t.name, i),
			StartTime: start, Actor: core.Actor{UserAgentToken: token}}}
		if expected {
			act.a.ExpectedEvents = t.names
		}
		for _, e := range t.events {
			ne := moved(e, e.EventTime.Add(shift), fmt.Sprintf("%s-run%03d", e.EventID, i))
			ne.Record = []byte(strings.ReplaceAll(string(ne.Record), t.token, token))
			act.ids[ne.EventID] = true
			if v := ne.EventTime.Add(delivery); v.After(act.visible) {
				act.visible = v
			}
			events = append(events, ne)
		}
		actions = append(actions, act)
	}
	// The background covers the actions' windows and their settle time.
	lo, hi := base.Add(-15*time.Minute), base.Add(spread+25*time.Minute)
	step := hi.Sub(lo) / time.Duration(max(len(background), 1))
	for k, e := range background {
		events = append(events, moved(e, lo.Add(time.Duration(k)*step).Truncate(time.Second), e.EventID))
	}
	return actions, events
}

// moved returns e at another time (in its record too) and with another ID.
func moved(e core.RawEvent, at time.Time, id string) core.RawEvent {
	at = at.UTC()
	rec := string(e.Record)
	if v := gjson.Get(rec, "eventTime"); v.Exists() && v.Index > 0 {
		rec = rec[:v.Index] + strconv.Quote(at.Format(time.RFC3339)) + rec[v.Index+len(v.Raw):]
	}
	if v := gjson.Get(rec, "eventID"); v.Exists() && v.Index > 0 {
		rec = rec[:v.Index] + strconv.Quote(id) + rec[v.Index+len(v.Raw):]
	}
	e.Record, e.EventTime, e.EventID, e.Envelope = []byte(rec), at, id, nil
	return e
}

// world is an emulator on a virtual clock and a Factory sharing that clock (one in-process rate
// limiter per key and region, as in serve).
type world struct {
	clk *clock.Virtual
	emu *emulator.Emulator
	srv *emulator.Server
	f   *cloudtrail.Factory
}

func newWorld(events []core.RawEvent, delivery time.Duration, start time.Time) (*world, error) {
	w := &world{clk: clock.NewVirtual(start)}
	var err error
	w.emu, err = emulator.New(events, emulator.WithClock(w.clk), emulator.WithDeliveryDelay(delivery), emulator.WithSeed(1))
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
func shared(res *Result, actions []action, events []core.RawEvent, delivery time.Duration) error {
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
	eng := workflow.New(st, w.f, workflow.WithClock(w.clk))
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
	var lat []float64
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
	}
	res.APICallsPerRun = round(float64(res.APICalls) / float64(len(ids)))
	res.Recall = round(float64(found) / float64(total))
	res.MaxCallsPerSecond = w.maxPerSecond()
	res.Throttled = max(res.Throttled, w.throttled())
	res.VirtualSeconds = w.clk.Now().Sub(start).Seconds()
	if len(lat) > 0 {
		sort.Float64s(lat)
		res.VerdictLatencyP50Seconds = lat[len(lat)/2]
		res.VerdictLatencyMaxSeconds = lat[len(lat)-1]
	}
	return nil
}

// poller is one run polling on its own by the guide's scheme.
type poller struct {
	at    time.Time
	seq   int
	i     int
	start time.Time
	found map[string]bool
}

type pollQueue []*poller

func (q pollQueue) Len() int { return len(q) }
func (q pollQueue) Less(i, j int) bool {
	if c := q[i].at.Compare(q[j].at); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q pollQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pollQueue) Push(x any)   { *q = append(*q, x.(*poller)) }
func (q *pollQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// baseline replays the actions with each run polling as the integration guide describes: from
// the action's start, every queryInterval until startTime+queryTime, each query re-reading the
// last queryTime of event time ([now-queryTime, now]). The runs share the process's rate limiter,
// on the same discrete-event schedule as the shared replay.
func baseline(res *Result, actions []action, events []core.RawEvent, delivery time.Duration) error {
	ctx := context.Background()
	start := actions[0].a.StartTime
	w, err := newWorld(events, delivery, start)
	if err != nil {
		return err
	}
	defer w.srv.Close()
	in, err := core.ParseIntegration([]byte(settings))
	if err != nil {
		return err
	}
	in.ID, in.Endpoint = "bench", w.srv.URL()
	src, err := w.f.Source(ctx, in)
	if err != nil {
		return err
	}
	q := &pollQueue{}
	for i := range actions {
		heap.Push(q, &poller{at: actions[i].a.StartTime, seq: i, i: i, start: actions[i].a.StartTime, found: map[string]bool{}})
	}
	seq := len(actions)
	var pollers []*poller
	for q.Len() > 0 {
		p := heap.Pop(q).(*poller)
		w.clk.Set(p.at)
		now := w.clk.Now()
		r, err := src.Lookup(ctx, core.Query{Region: in.AWSRegion, From: now.Add(-in.QueryTimeD()), To: now, Budget: in.QueryBudget()})
		res.BaselineAPICalls += r.Calls
		res.BaselineThrottled += r.Throttled
		var te *cloudtrail.ThrottledError
		if err != nil && !errors.As(err, &te) {
			return err
		}
		for _, e := range r.Events {
			if actions[p.i].ids[e.EventID] {
				p.found[e.EventID] = true
			}
		}
		next := p.at.Add(in.QueryIntervalD())
		if next.After(p.start.Add(in.QueryTimeD())) {
			pollers = append(pollers, p)
			continue
		}
		p.at, p.seq = next, seq
		seq++
		heap.Push(q, p)
	}
	total, found := 0, 0
	for _, p := range pollers {
		total += len(actions[p.i].ids)
		found += len(p.found)
	}
	res.BaselineAPICallsPerRun = round(float64(res.BaselineAPICalls) / float64(len(actions)))
	res.BaselineRecall = round(float64(found) / float64(cmp.Or(total, 1)))
	res.BaselineMaxCallsPerSec = w.maxPerSecond()
	res.BaselineThrottled = max(res.BaselineThrottled, w.throttled())
	return nil
}
