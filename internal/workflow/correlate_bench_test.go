package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/push"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

// countingStore counts the store reads of raw events: RawEvents visits (one or more queries
// each) and the events they yield.
type countingStore struct {
	core.Store
	visits, events atomic.Int64
}

func (s *countingStore) RawEvents(ctx context.Context, partition string, from, to time.Time) iter.Seq2[core.RawEvent, error] {
	s.visits.Add(1)
	return func(yield func(core.RawEvent, error) bool) {
		for ev, err := range s.Store.RawEvents(ctx, partition, from, to) {
			s.events.Add(1)
			if !yield(ev, err) {
				return
			}
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// noiseWorld is a detonation moved to start and a busy account's other traffic around it: rate
// events a minute (TrailDiscover records in the detonation's account, without its token) from
// 5 minutes before the read range to 15 after it.
func noiseWorld(b *testing.B, all, pool []core.RawEvent, d detonation, rate int, queryTime time.Duration) ([]core.RawEvent, time.Time, string) {
	start := d.first.Add(-10 * time.Second)
	var world []core.RawEvent
	account := ""
	for _, ev := range all {
		if slices.Contains(d.ids, ev.EventID) {
			world = append(world, ev)
			account = push.AccountOf(ev)
		}
	}
	from, to := start.Add(-queryTime-5*time.Minute), start.Add(queryTime+15*time.Minute)
	n := int(to.Sub(from).Minutes()) * rate
	step := to.Sub(from) / time.Duration(n)
	for i := range n {
		var rec map[string]any
		if err := json.Unmarshal(pool[i%len(pool)].Record, &rec); err != nil {
			b.Fatal(err)
		}
		at := from.Add(time.Duration(i) * step).UTC()
		id := fmt.Sprintf("noise-%07d", i)
		rec["eventID"], rec["eventTime"], rec["awsRegion"], rec["recipientAccountId"] = id, at.Format(time.RFC3339Nano), "us-east-1", account
		rec["userAgent"] = "aws-cli/2.15.0 background"
		raw, _ := json.Marshal(rec)
		world = append(world, core.RawEvent{EventID: id, EventTime: at, Region: "us-east-1", Record: raw})
	}
	return world, start, account
}

// WorkRow is one line of the correlation-work benchmark: one run, its correlate steps as they are
// (each examines what is new) and, from the same run, a full correlation after each step (how
// every step worked before), with CPU time and store reads of each.
type WorkRow struct {
	Benchmark        string  `json:"benchmark"`
	NoisePerMinute   int     `json:"noiseEventsPerMinute"`
	QueryTime        int     `json:"queryTimeMinutes"`
	StoredEvents     int     `json:"storedEvents"` // raw events the run's reads stored
	Steps            int     `json:"correlateSteps"`
	StepsCPUms       float64 `json:"correlateCpuMs"`
	StepsStoreReads  int64   `json:"correlateStoreEventsRead"`
	StepsStoreVisits int64   `json:"correlateStoreVisits"`
	FullCPUms        float64 `json:"fullCorrelationCpuMs"`
	FullStoreReads   int64   `json:"fullCorrelationStoreEventsRead"`
	CPURatio         float64 `json:"fullOverStepsCpu"`
	ReadsRatio       float64 `json:"fullOverStepsStoreReads"`
	Verdict          string  `json:"verdict"`
	Matched          int     `json:"matched"`
}

// correlateWork runs one action of d over rate noise events a minute with queryTime, driving the
// steps as the state machine does on a virtual clock, and measures each correlate step and a full
// correlation of what is stored right after it.
func correlateWork(b *testing.B, all, pool []core.RawEvent, d detonation, rate int, queryTime int) WorkRow {
	ctx := context.Background()
	world, start, account := noiseWorld(b, all, pool, d, rate, time.Duration(queryTime)*time.Minute)
	_ = account
	clk := clock.NewVirtual(start)
	_, url := serveEmulator(b, clk, world)
	base, err := bolt.Open(b.TempDir() + "/w.db")
	if err != nil {
		b.Fatal(err)
	}
	defer base.Close()
	st := &countingStore{Store: base}
	integ := storeIntegration(b, base, url, fmt.Sprintf(`{"name":"w","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"test-secret-value","queryTime":%d,"pageSize":1000,"maxPage":100}`, queryTime))
	eng := workflow.New(st, testSources(clk), workflow.WithClock(clk), workflow.WithAlertCompiler(alerts.Compiler()))
	r, err := eng.CreateRun(ctx, "it", &core.Action{JobID: "j", ActionID: d.name, StartTime: start, Actor: core.Actor{UserAgentToken: d.token}}, "")
	if err != nil {
		b.Fatal(err)
	}
	row := WorkRow{Benchmark: "correlate-work", NoisePerMinute: rate, QueryTime: queryTime}
	must := func(s workflow.State, err error) workflow.State {
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s := must(eng.Begin(ctx, workflow.State{RunID: r.RunID}))
	var stepsCPU, fullCPU time.Duration
	for !s.Done {
		clk.Set(clk.Now().Add(time.Duration(s.WaitSeconds) * time.Second))
		if s = must(eng.Fetch(ctx, s)); s.Done {
			break
		}
		visits, events, cpu := st.visits.Load(), st.events.Load(), cpuTime()
		s = must(eng.Correlate(ctx, s))
		stepsCPU += cpuTime() - cpu
		row.Steps++
		row.StepsStoreVisits += st.visits.Load() - visits
		row.StepsStoreReads += st.events.Load() - events
		// The baseline, from the same run at the same point: everything stored, correlated at once.
		cur, err := base.GetRun(ctx, r.RunID)
		if err != nil {
			b.Fatal(err)
		}
		events, cpu = st.events.Load(), cpuTime()
		_ = fullCorrelation(b, st, integ, cur)
		fullCPU += cpuTime() - cpu
		row.FullStoreReads += st.events.Load() - events
		if s.AlertsDue {
			s = must(eng.Alerts(ctx, s))
		}
	}
	done, err := base.GetRun(ctx, r.RunID)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range workflow.Partitions(integ, done) {
		evs, _ := core.CollectRawEvents(base.RawEvents(ctx, p, time.Time{}, time.Time{}))
		row.StoredEvents += len(evs)
	}
	row.Verdict, row.Matched = done.Verdict, len(done.Events)
	row.StepsCPUms, row.FullCPUms = float64(stepsCPU.Microseconds())/1000, float64(fullCPU.Microseconds())/1000
	row.CPURatio = round2(row.FullCPUms / max(row.StepsCPUms, 0.001))
	row.ReadsRatio = round2(float64(row.FullStoreReads) / float64(max(row.StepsStoreReads, 1)))
	if done.Status != core.StatusCompleted || len(done.Events) != len(d.ids) {
		b.Fatalf("noise %d: status %s, %d of %d events matched (%s)", rate, done.Status, len(done.Events), len(d.ids), done.Error)
	}
	return row
}

// BenchmarkCorrelateWork shows that a run's correlation work (CPU time and raw events read from
// the store by its correlate steps) grows linearly with the events its reads store, at 100 and
// 1,000 noise events a minute with queryTime 30, next to a full correlation after each step (how
// every step worked before), measured on the same run; one JSON line per size, then a table.
func BenchmarkCorrelateWork(b *testing.B) {
	all, pool := busyCorpus(b)
	d := detonations(b)[0]
	var rows []WorkRow
	for b.Loop() {
		rows = rows[:0]
		for _, rate := range []int{100, 1000} {
			rows = append(rows, correlateWork(b, all, pool, d, rate, 30))
		}
	}
	printJSONLines(rows)
	fmt.Println("| noise/min | stored events | steps | steps CPU ms | steps store reads | full CPU ms | full store reads | full/steps CPU | full/steps reads |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %d | %d | %d | %.0f | %d | %.0f | %d | %.1f | %.1f |\n", r.NoisePerMinute, r.StoredEvents, r.Steps, r.StepsCPUms,
			r.StepsStoreReads, r.FullCPUms, r.FullStoreReads, r.CPURatio, r.ReadsRatio)
	}
	if len(rows) == 2 {
		a, z := rows[0], rows[1]
		fmt.Printf("growth 100 -> 1000/min: stored events x%.2f, steps CPU x%.2f, steps store reads x%.2f, per stored event CPU %.1f -> %.1f µs, reads %.2f -> %.2f\n",
			float64(z.StoredEvents)/float64(a.StoredEvents), z.StepsCPUms/a.StepsCPUms, float64(z.StepsStoreReads)/float64(a.StepsStoreReads),
			1000*a.StepsCPUms/float64(a.StoredEvents), 1000*z.StepsCPUms/float64(z.StoredEvents),
			float64(a.StepsStoreReads)/float64(a.StoredEvents), float64(z.StepsStoreReads)/float64(z.StoredEvents))
	}
}

// heapSampler samples the Go heap every millisecond until stopped, and keeps the peaks: of its
// object bytes (live and garbage not yet collected) and of the live heap the last GC marked.
type heapSampler struct {
	stop       chan struct{}
	wg         sync.WaitGroup
	peak, live uint64
}

// heapNow returns the heap's object bytes and the live heap of the last GC (runtime/metrics).
func heapNow() (objects, live uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func (h *heapSampler) sample() {
	o, l := heapNow()
	h.peak, h.live = max(h.peak, o), max(h.live, l)
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			h.sample()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) done() (peak, live uint64) {
	close(h.stop)
	h.wg.Wait()
	h.sample()
	return h.peak, h.live
}

// BenchmarkCorrelatePeakHeap measures the heap one run needs above what was there before it
// (the loaded records and the emulator serving them, after a GC: about 350 MB): queryTime 30 with
// 1,000 noise events a minute, the run executed on a virtual clock over bolt (Execute: the
// emulator's serving is in the same process and counted too), the Go heap's object bytes
// (runtime/metrics) sampled every millisecond. Then, from the same store, the peak of one full
// correlation of everything the run stored (how every correlate step worked before). Target:
// under 200 MB.
//
// Heap object bytes include garbage not yet collected: with GOGC=100 the pacer lets it grow to
// about the baseline's size (350 MB here) before collecting, whatever the run holds, so the
// measure is made at GOGC=100 and at GOGC=10, where collection follows the live heap closely
// (garbage up to a tenth of the heap, about 35 MB, is still counted). The peak live heap (what
// a GC found reachable, /gc/heap/live:bytes, the largest over the GCs during the measure) is
// reported too: at GOGC=10 GCs come often enough for it to be the run's working set.
func BenchmarkCorrelatePeakHeap(b *testing.B) {
	all, pool := busyCorpus(b)
	d := detonations(b)[0]
	for b.Loop() {
		for _, gc := range []int{100, 10} {
			peakHeap(b, all, pool, d, gc)
		}
	}
}

func peakHeap(b *testing.B, all, pool []core.RawEvent, d detonation, gcPercent int) {
	ctx := context.Background()
	defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	{
		world, start, _ := noiseWorld(b, all, pool, d, 1000, 30*time.Minute)
		clk := clock.NewVirtual(start)
		// Its own emulator, closed at the end, so the next measure starts from the same baseline.
		emu, err := emulator.New(world, emulator.WithClock(clk), emulator.WithDeliveryDelay(5*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		srv, err := emulator.Serve(emu, "")
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		url := srv.URL()
		st, err := bolt.Open(b.TempDir() + "/p.db")
		if err != nil {
			b.Fatal(err)
		}
		integ := storeIntegration(b, st, url, `{"name":"p","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"test-secret-value","queryTime":30,"pageSize":1000,"maxPage":100}`)
		eng := workflow.New(st, testSources(clk), workflow.WithClock(clk), workflow.WithAlertCompiler(alerts.Compiler()))
		r, err := eng.CreateRun(ctx, "it", &core.Action{JobID: "j", ActionID: d.name, StartTime: start, Actor: core.Actor{UserAgentToken: d.token}}, "")
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		before, beforeLive := heapNow()
		h := sampleHeap()
		done, err := eng.Execute(ctx, r.RunID, nil)
		peak, live := h.done()
		if err != nil || done.Status != core.StatusCompleted {
			b.Fatalf("run: %v, %+v", err, done)
		}
		runtime.GC()
		beforeFull, beforeFullLive := heapNow()
		h = sampleHeap()
		_ = fullCorrelation(b, st, integ, done)
		peakFull, liveFull := h.done()
		stored := 0
		for _, p := range workflow.Partitions(integ, done) {
			evs, _ := core.CollectRawEvents(st.RawEvents(ctx, p, time.Time{}, time.Time{}))
			stored += len(evs)
		}
		st.Close()
		b.ReportMetric(float64(peak-before)/1e6, fmt.Sprintf("run-peak-MB@GOGC=%d", gcPercent))
		b.ReportMetric(float64(peakFull-beforeFull)/1e6, fmt.Sprintf("full-peak-MB@GOGC=%d", gcPercent))
		printJSONLines([]map[string]any{{"benchmark": "correlate-peak-heap", "gogc": gcPercent, "noiseEventsPerMinute": 1000, "queryTimeMinutes": 30,
			"storedEvents": stored, "heapBeforeRunMB": float64(before) / 1e6, "runPeakAboveMB": float64(peak-before) / 1e6,
			"runPeakLiveAboveMB": float64(live-beforeLive) / 1e6, "fullCorrelationPeakAboveMB": float64(peakFull-beforeFull) / 1e6,
			"fullCorrelationPeakLiveAboveMB": float64(liveFull-beforeFullLive) / 1e6, "targetMB": 200, "matched": len(done.Events)}})
	}
}
