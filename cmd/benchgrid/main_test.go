package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/testenv"
)

// childEnv makes the test binary act as the command, so that the grid's child processes can be
// tested: runChild re-executes os.Args[0] with -cell.
const childEnv = "BENCHGRID_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tiny is a cell small enough for a unit test: one short detonation, a 5-minute window, 10
// background events a minute.
func tiny(t *testing.T) (cell, options) {
	o := options{data: testenv.SharedData(t), actions: "aws.credential-access.ec2-get-password-data",
		delivery: emulator.FixedDelay(5 * time.Minute), timeout: time.Minute}
	return cell{queryTime: 5, perMinute: 10}, o
}

// TestLowerBound: the lower bound the grid prints is what one read of a run's read range costs
// against the emulator, and the read range holds the action's events and the background at the
// cell's rate.
func TestLowerBound(t *testing.T) {
	c, o := tiny(t)
	// The read range [start-5m, start+5m] is closed: the background events of its last second are
	// in it too (one at 10 a minute, two at 120).
	for _, tc := range []struct{ perMinute, atEnd int }{{10, 1}, {120, 2}} {
		perMinute := tc.perMinute
		c.perMinute = perMinute
		plans, events, err := build(c, false, o)
		if err != nil {
			t.Fatal(err)
		}
		p := plans[0]
		// 10 minutes of background, and the detonation's own events.
		if want := 10*perMinute + tc.atEnd + len(p.ids); p.readEvents != want {
			t.Errorf("%d a minute: %d events in the read range, want %d", perMinute, p.readEvents, want)
		}
		in := p.in
		rr := core.NewCorrelator(in, &p.action).ReadRange()
		clk := clock.NewVirtual(rr.To.Add(time.Hour)) // everything delivered
		emu, err := emulator.New(events, emulator.WithClock(clk), emulator.WithKeys(emulator.Key{AccessKeyID: in.AccessKeyID, SecretAccessKey: in.SecretAccessKey}))
		if err != nil {
			t.Fatal(err)
		}
		srv, err := emulator.Serve(emu, "")
		if err != nil {
			t.Fatal(err)
		}
		in.ID, in.Endpoint = "lb", srv.URL()
		src, err := cloudtrail.NewFactory(t.Context(), cloudtrail.WithClock(clk), cloudtrail.WithLogger(slog.New(slog.DiscardHandler)),
			cloudtrail.WithPolicy(netguard.MustNew([]string{srv.URL()}, nil))).Source(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		calls, read := 0, 0
		for _, region := range in.QueryRegions(&p.action) {
			r, err := src.Lookup(t.Context(), core.Query{Region: region, From: rr.From, To: rr.To})
			if err != nil {
				t.Fatal(err)
			}
			calls += r.Calls
			read += len(r.Events)
		}
		srv.Close()
		if calls != p.lowerBound || read != p.readEvents {
			t.Errorf("%d a minute: one read took %d calls for %d events; the grid says %d calls for %d", perMinute, calls, read, p.lowerBound, p.readEvents)
		}
	}
}

// TestMeasure: a tiny cell measured in this process gives figures a user can check: every run
// completed with all its own events (5-minute delivery), calls at least the lower bound without
// expected events, a verdict after the last event was searchable, CPU and memory measured.
func TestMeasure(t *testing.T) {
	c, o := tiny(t)
	for _, expected := range []bool{false, true} {
		r, err := measure(t.Context(), c, expected, o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "ok" || r.Runs != 1 || r.FailedRuns != 0 {
			t.Fatalf("expected %v: status %s (%s), %d runs, %d failed", expected, r.Status, r.Error, r.Runs, r.FailedRuns)
		}
		run := r.PerRun[0]
		if r.Recall != 1 || run.Matched != run.Own || run.Own != 34 {
			t.Errorf("expected %v: recall %v, matched %d of %d own events (the detonation has 34)", expected, r.Recall, run.Matched, run.Own)
		}
		if !expected && run.APICalls < run.LowerBound {
			t.Errorf("without expected events the run read its whole window in %d calls, fewer than the lower bound %d", run.APICalls, run.LowerBound)
		}
		if r.CallsVsLowerBound != round(float64(run.APICalls)/float64(run.LowerBound)) {
			t.Errorf("calls vs lower bound %v, want %d/%d", r.CallsVsLowerBound, run.APICalls, run.LowerBound)
		}
		if run.CompletedAfterVisibleSeconds < 0 || run.LoggedAfterVisibleSeconds == nil {
			t.Errorf("expected %v: completed %vs after the last event was searchable, loggedAt %v", expected, run.CompletedAfterVisibleSeconds, run.LoggedAfterVisibleSeconds)
		}
		if !expected && run.CompletedAfterVisibleSeconds < 5*60 {
			t.Errorf("without expected events the run ends at its deadline, 15 minutes after start: completed only %vs after the last event was searchable", run.CompletedAfterVisibleSeconds)
		}
		if r.CPUSecondsPerRun <= 0 || r.CorpusLiveHeapMB <= 0 || r.PeakRSSMB < r.CorpusLiveHeapMB || r.PeakLiveHeapAboveCorpusMB < 0 {
			t.Errorf("expected %v: CPU %vs/run, corpus heap %v MB, peak RSS %v MB, peak heap above corpus %v MB", expected, r.CPUSecondsPerRun, r.CorpusLiveHeapMB, r.PeakRSSMB, r.PeakLiveHeapAboveCorpusMB)
		}
	}
}

// TestChild: the grid measures a cell in a child process (maxrss and CPU are the child's, from
// its wait), and a cell that outlasts -timeout is reported as timeout, not waited for.
func TestChild(t *testing.T) {
	c, o := tiny(t)
	t.Setenv(childEnv, "1")
	r := runChild(context.Background(), os.Args[0], c, true, o)
	if r.Status != "ok" || r.Runs != 1 || r.PeakRSSMB <= 0 || r.CPUSecondsTotal < r.CPUSecondsPerRun {
		t.Fatalf("child: status %s (%s), %d runs, peak RSS %v MB, CPU %vs total, %vs a run", r.Status, r.Error, r.Runs, r.PeakRSSMB, r.CPUSecondsTotal, r.CPUSecondsPerRun)
	}
	o.timeout = time.Millisecond
	start := time.Now()
	r = runChild(context.Background(), os.Args[0], c, false, o)
	if r.Status != "timeout" || !strings.Contains(r.Error, "0 of 1 runs measured") || time.Since(start) > 20*time.Second {
		t.Fatalf("timeout: status %s (%s) after %s", r.Status, r.Error, time.Since(start))
	}
	var b strings.Builder
	writeTable(&b, []Result{r})
	if !strings.Contains(b.String(), "| timeout: after 1ms") {
		t.Errorf("table row of a timed-out cell:\n%s", b.String())
	}
}

func TestParseCells(t *testing.T) {
	cs, err := parseCells(defaultCells)
	if err != nil || len(cs) != 9 || cs[8] != (cell{queryTime: 120, perMinute: 1000}) {
		t.Fatalf("default cells: %v, %v", cs, err)
	}
	for _, bad := range []string{"5", "x10", "5x", "0x10", "5x-1", "5x10,abc"} {
		if _, err := parseCells(bad); err == nil || !strings.Contains(err.Error(), "-cells") {
			t.Errorf("%q: error %v, want one naming -cells", bad, err)
		}
	}
}
