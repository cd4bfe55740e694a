package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/testenv"
)

// deliveryModels are the two ways CloudTrail is made to deliver in the polling benchmark: every
// record 5 minutes late, and most 5 minutes late with a tenth 12 (chosen per record by EventId).
func deliveryModels(t testing.TB) []emulator.Delays {
	var out []emulator.Delays
	for _, spec := range []string{"5m", "5m,12m@0.1"} {
		d, err := emulator.ParseDelays(spec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// pollOutcome is what one scheme did for one action.
type pollOutcome struct {
	calls   int
	found   int           // the detonation's own events matched
	latency time.Duration // from the action's start to the verdict (the scheme's last query)
}

// guideWorld is an emulator delivering by model, on a virtual clock at start, and a source on it.
func guideWorld(ctx context.Context, t testing.TB, all []core.RawEvent, model emulator.Delays, start time.Time) (*clock.Virtual, core.Source, *core.Integration, func()) {
	clk := clock.NewVirtual(start)
	emu, err := emulator.New(all, emulator.WithClock(clk), emulator.WithDeliveryDelays(model), emulator.WithSeed(42))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emulator.Serve(emu, "")
	if err != nil {
		t.Fatal(err)
	}
	in, _ := core.ParseIntegration([]byte(baseSettings))
	in.ID, in.Endpoint = "guide", srv.URL()
	src, err := cloudtrail.NewFactory(ctx, cloudtrail.WithClock(clk), cloudtrail.WithLogger(slog.New(slog.DiscardHandler)), cloudtrail.WithPolicy(testenv.LoopbackPolicy)).Source(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return clk, src, in, func() { srv.Close() }
}

// guideScheme polls as the integration guide describes, at its best: the same sliding window the
// guide gives (query k reads [start-queryTime+k*interval, start+k*interval]), every queryInterval
// from startTime+delayTime until every window of the action has been read, matching the action's
// user-agent token in the window [start-queryTime, start+queryTime]. With expected event names it
// stops as soon as each of them has matched, as the Director does.
func guideScheme(ctx context.Context, t testing.TB, all []core.RawEvent, model emulator.Delays, d detonation, delayTime time.Duration, a *core.Action) pollOutcome {
	clk, src, in, done := guideWorld(ctx, t, all, model, a.StartTime)
	defer done()
	want := map[string]bool{}
	for _, id := range d.ids {
		want[id] = true
	}
	qt, iv := in.QueryTimeD(), in.QueryIntervalD()
	window := core.Window{From: a.StartTime.Add(-qt), To: a.StartTime.Add(qt)}
	got, names := map[string]bool{}, map[string]bool{}
	var out pollOutcome
	for k := time.Duration(0); k*iv <= qt; k++ {
		clk.Set(a.StartTime.Add(delayTime + k*iv))
		res, err := src.Lookup(ctx, core.Query{Region: in.AWSRegion, From: a.StartTime.Add(-qt + k*iv), To: a.StartTime.Add(k * iv), Budget: in.QueryBudget()})
		if err != nil {
			t.Fatal(err)
		}
		out.calls += res.Calls
		for _, e := range res.Events {
			if !window.Contains(e.EventTime) || !strings.Contains(gjson.GetBytes(e.Record, "userAgent").String(), a.Actor.UserAgentToken) {
				continue
			}
			names[gjson.GetBytes(e.Record, "eventSource").String()+":"+gjson.GetBytes(e.Record, "eventName").String()] = true
			if want[e.EventID] {
				got[e.EventID] = true
			}
		}
		out.latency = clk.Now().Sub(a.StartTime)
		if len(a.ExpectedEvents) > 0 && !slices.ContainsFunc(a.ExpectedEvents, func(n string) bool { return !names[n] }) {
			break
		}
	}
	out.found = len(got)
	return out
}

// lowerBound is the fewest calls that read each event of the action's window once: one read of
// the whole window per region the run queries, once everything has been delivered (ceil(events /
// 50) calls, and one call when the window is empty).
func lowerBound(ctx context.Context, t testing.TB, all []core.RawEvent, model emulator.Delays, a *core.Action) int {
	in, _ := core.ParseIntegration([]byte(baseSettings))
	qt := in.QueryTimeD()
	_, src, in, done := guideWorld(ctx, t, all, model, a.StartTime.Add(qt+model.Max()))
	defer done()
	calls := 0
	for _, region := range in.QueryRegions(a) {
		res, err := src.Lookup(ctx, core.Query{Region: region, From: a.StartTime.Add(-qt), To: a.StartTime.Add(qt)})
		if err != nil {
			t.Fatal(err)
		}
		calls += res.Calls
	}
	return calls
}

// trailproofScheme runs the action through the workflow as it is.
func trailproofScheme(t testing.TB, all []core.RawEvent, model emulator.Delays, d detonation, a *core.Action) pollOutcome {
	s := newStack(t, all, a.StartTime, emulator.WithDeliveryDelays(model))
	s.integration(t, baseSettings)
	r := s.run(t, a)
	out := pollOutcome{calls: r.APICalls}
	for _, e := range r.Events {
		if slices.Contains(d.ids, e.EventID) {
			out.found++
		}
	}
	if r.CompletedAt != nil {
		out.latency = r.CompletedAt.Sub(a.StartTime)
	}
	return out
}

// PollingRow is one line of the polling benchmark: one scheme under one delivery model, over
// every detonation.
type PollingRow struct {
	Benchmark          string  `json:"benchmark"`
	Delivery           string  `json:"delivery"`
	ExpectedEvents     bool    `json:"expectedEvents"`
	Scheme             string  `json:"scheme"`
	Runs               int     `json:"runs"`
	CallsPerRun        float64 `json:"callsPerRun"`
	Recall             float64 `json:"recall"`
	LatencyMeanSeconds float64 `json:"verdictLatencyMeanSeconds"`
	LatencyMaxSeconds  float64 `json:"verdictLatencyMaxSeconds"`
	LowerBound         float64 `json:"lowerBoundCallsPerRun"`
	VsLowerBound       float64 `json:"callsVsLowerBound"`
	VsBestBaseline     float64 `json:"callsVsBestBaseline"` // calls per run / the best baseline's at its recall
}

// BenchmarkPollingSchemes measures, in one run, every polling scheme over every Stratus detonation
// with the TrailDiscover records as background (5-minute window, a query every 30 s): trailproof's
// scheme as it is, the guide's sliding window with delayTime 0, 5 and 15, and the one-read lower
// bound; each with the user-agent token only and with the detonation's event names as
// expectedEvents; under fixed 5-minute delays and under 5m,12m@0.1. It prints one JSON line per
// scheme (`make bench` shows them as a table). The best baseline of a group is the guide variant
// with the highest recall, then the fewest calls.
func BenchmarkPollingSchemes(b *testing.B) {
	all := stratusCorpus(b)
	dets := detonations(b)
	ctx := context.Background()
	var rows []PollingRow
	for b.Loop() {
		rows = rows[:0]
		for _, model := range deliveryModels(b) {
			for _, expected := range []bool{false, true} {
				rows = append(rows, pollingGroup(ctx, b, all, dets, model, expected)...)
			}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	for _, r := range rows {
		_ = enc.Encode(r)
	}
	fmt.Println("| delivery | expected events | scheme | calls/run | x lower bound | x best baseline | recall | verdict latency mean / max (s) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %v | %s | %.2f | %.2f | %.2f | %.2f | %.0f / %.0f |\n", r.Delivery, r.ExpectedEvents, r.Scheme,
			r.CallsPerRun, r.VsLowerBound, r.VsBestBaseline, r.Recall, r.LatencyMeanSeconds, r.LatencyMaxSeconds)
	}
}

// pollingGroup measures every scheme under one delivery model, with or without expected events.
func pollingGroup(ctx context.Context, b *testing.B, all []core.RawEvent, dets []detonation, model emulator.Delays, expected bool) []PollingRow {
	schemes := []string{"trailproof", "guide-delayTime0", "guide-delayTime5", "guide-delayTime15"}
	outs := make([][]pollOutcome, len(schemes))
	total, bound := 0, 0
	for _, d := range dets {
		a := &core.Action{JobID: "j", ActionID: d.name, StartTime: d.first.Add(-10 * time.Second), Actor: core.Actor{UserAgentToken: d.token}}
		if expected {
			a.ExpectedEvents = d.names
		}
		total += len(d.ids)
		bound += lowerBound(ctx, b, all, model, a)
		outs[0] = append(outs[0], trailproofScheme(b, all, model, d, a))
		for i, delayTime := range []time.Duration{0, 5 * time.Minute, 15 * time.Minute} {
			outs[i+1] = append(outs[i+1], guideScheme(ctx, b, all, model, d, delayTime, a))
		}
	}
	n := float64(len(dets))
	lb := float64(bound) / n
	rows := make([]PollingRow, len(schemes)+1)
	for i, name := range schemes {
		r := PollingRow{Benchmark: "polling", Delivery: model.String(), ExpectedEvents: expected, Scheme: name, Runs: len(dets), LowerBound: lb}
		calls, found := 0, 0
		var sum, most time.Duration
		for _, o := range outs[i] {
			calls += o.calls
			found += o.found
			sum += o.latency
			most = max(most, o.latency)
		}
		r.CallsPerRun = round2(float64(calls) / n)
		r.Recall = round2(float64(found) / float64(total))
		r.LatencyMeanSeconds = round2(sum.Seconds() / n)
		r.LatencyMaxSeconds = most.Seconds()
		r.VsLowerBound = round2(r.CallsPerRun / lb)
		rows[i] = r
	}
	rows[len(schemes)] = PollingRow{Benchmark: "polling", Delivery: model.String(), ExpectedEvents: expected, Scheme: "lower-bound",
		Runs: len(dets), CallsPerRun: round2(lb), Recall: 1, LowerBound: lb, VsLowerBound: 1}
	best := rows[1]
	for _, r := range rows[2:len(schemes)] {
		if r.Recall > best.Recall || r.Recall == best.Recall && r.CallsPerRun < best.CallsPerRun {
			best = r
		}
	}
	for i := range rows {
		rows[i].LowerBound = round2(lb)
		rows[i].VsBestBaseline = round2(rows[i].CallsPerRun / best.CallsPerRun)
	}
	return rows
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
