package workflow_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/testenv"
)

// guideScheme polls as the integration guide describes: from the action's start, every
// queryInterval until startTime+queryTime, each query re-reading the last queryTime of event time
// ([now-queryTime, now]). It returns the LookupEvents calls made and the detonation's events found.
func guideScheme(ctx context.Context, t testing.TB, all []core.RawEvent, d detonation) (calls, found int) {
	clk := clock.NewVirtual(d.first.Add(-10 * time.Second))
	emu, err := emulator.New(all, emulator.WithClock(clk), emulator.WithDeliveryDelay(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emulator.Serve(emu, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	in, _ := core.ParseIntegration([]byte(baseSettings))
	in.ID, in.Endpoint = "guide", srv.URL()
	src, err := cloudtrail.NewFactory(ctx, cloudtrail.WithClock(clk), cloudtrail.WithLogger(slog.New(slog.DiscardHandler)), cloudtrail.WithPolicy(testenv.LoopbackPolicy)).Source(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, id := range d.ids {
		want[id] = true
	}
	got := map[string]bool{}
	start := clk.Now()
	for now := start; !now.After(start.Add(in.QueryTimeD())); now = now.Add(in.QueryIntervalD()) {
		clk.Set(now)
		res, err := src.Lookup(ctx, core.Query{Region: in.AWSRegion, From: now.Add(-in.QueryTimeD()), To: now, Budget: in.QueryBudget()})
		if err != nil {
			t.Fatal(err)
		}
		calls += res.Calls
		for _, e := range res.Events {
			if want[e.EventID] {
				got[e.EventID] = true
			}
		}
	}
	return calls, len(got)
}

// BenchmarkPollingSchemes compares, over every Stratus detonation with the TrailDiscover records
// as background, trailproof's incremental polling with the guide's sliding window (5-minute
// window, a query every 30 s, CloudTrail delivering events 5 minutes late): LookupEvents calls per
// run and recall (the share of the detonation's events found). trailproof runs twice: with the
// user-agent token only (it then polls until the window's end plus settleTime), and with the
// detonation's event names as expectedEvents (it then completes once they have all matched).
func BenchmarkPollingSchemes(b *testing.B) {
	data := testenv.SharedData(b)
	all, err := corpus.Load(filepath.Join(data, "stratus-red-team", "docs", "detonation-logs"),
		filepath.Join(data, "traildiscover", "docs", "logExamples"))
	if err != nil {
		b.Fatal(err)
	}
	dets := detonations(b)
	ctx := context.Background()
	for b.Loop() {
		var tpCalls, tpFound, exCalls, exFound, gCalls, gFound, total int
		for _, d := range dets {
			s := newStack(b, all, d.first.Add(-10*time.Second))
			s.integration(b, baseSettings)
			r := s.run(b, &core.Action{JobID: "j", ActionID: d.name, StartTime: d.first.Add(-10 * time.Second), Actor: core.Actor{UserAgentToken: d.token}})
			tpCalls += r.APICalls
			tpFound += len(r.Events)
			s = newStack(b, all, d.first.Add(-10*time.Second))
			s.integration(b, baseSettings)
			r = s.run(b, &core.Action{JobID: "j", ActionID: d.name, StartTime: d.first.Add(-10 * time.Second),
				Actor: core.Actor{UserAgentToken: d.token}, ExpectedEvents: d.names})
			exCalls += r.APICalls
			exFound += len(r.Events)
			c, f := guideScheme(ctx, b, all, d)
			gCalls += c
			gFound += f
			total += len(d.ids)
		}
		n := float64(len(dets))
		b.ReportMetric(float64(tpCalls)/n, "trailproof-calls/run")
		b.ReportMetric(float64(exCalls)/n, "trailproof-expected-calls/run")
		b.ReportMetric(float64(exFound)/float64(total), "trailproof-expected-recall")
		b.ReportMetric(float64(gCalls)/n, "guide-calls/run")
		b.ReportMetric(float64(tpFound)/float64(total), "trailproof-recall")
		b.ReportMetric(float64(gFound)/float64(total), "guide-recall")
	}
}
