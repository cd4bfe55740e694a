package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/benchcorpus"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

// cell is one point of the grid.
type cell struct {
	queryTime int // minutes
	perMinute int // background events a minute
}

func (c cell) String() string { return fmt.Sprintf("%dx%d", c.queryTime, c.perMinute) }

func parseCell(s string) (cell, error) {
	q, r, ok := strings.Cut(strings.TrimSpace(s), "x")
	qt, err1 := strconv.Atoi(q)
	pm, err2 := strconv.Atoi(r)
	if !ok || err1 != nil || err2 != nil || qt < 1 || pm < 0 {
		return cell{}, fmt.Errorf("-cells: %q is not QUERYTIMExRATE (queryTime minutes x background events a minute, e.g. 30x100)", s)
	}
	return cell{queryTime: qt, perMinute: pm}, nil
}

func parseCells(s string) ([]cell, error) {
	var out []cell
	for _, f := range strings.Split(s, ",") {
		c, err := parseCell(f)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// base is when the first replayed action starts; action i starts 20 s × i later.
var base = time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)

// deadlineAfterWindow is the integration's settleTime (the default): a run without expected
// events ends this long after its window.
const deadlineAfterWindow = 10 * time.Minute

// region is the integration's region, the one the busy background is recorded in.
const region = "us-east-1"

// settingsFor is a cell's integration: everything the guide's default but queryTime; run i
// signs with a key of its own, so that no run shares the emulator's rate budget with another.
func settingsFor(c cell, i int) string {
	return fmt.Sprintf(`{"name":"grid","awsRegion":%q,"accessKeyId":"AKIABENCHGRID%07d","secretAccessKey":"bench-grid-secret-%d","queryTime":%d}`,
		region, i, i, c.queryTime)
}

// loadActions reads the detonations named by -actions and the background pool.
func loadActions(o options) ([]benchcorpus.Template, []core.RawEvent, error) {
	data := benchcorpus.DataDir(o.data)
	ts, pool, err := benchcorpus.Load(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: nothing measured", err)
	}
	var out []benchcorpus.Template
	for _, name := range strings.Split(o.actions, ",") {
		i := slices.IndexFunc(ts, func(t benchcorpus.Template) bool { return t.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, nil, fmt.Errorf("-actions: no detonation %q in %s", name, benchcorpus.DetonationsDir(data))
		}
		out = append(out, ts[i])
	}
	return out, pool, nil
}

// plan is one action of a cell and what its run should find.
type plan struct {
	in         *core.Integration // its integration, with a key of its own
	action     core.Action
	ids        map[string]bool // its own events
	visible    time.Time       // when the last of them becomes searchable
	readEvents int             // events in its read range, all regions queried
	lowerBound int             // LookupEvents calls of one read of its read range
}

// build makes a cell's corpus: the actions' events and the background over the span their runs
// read, with what each run should find.
func build(c cell, expected bool, o options) ([]plan, []core.RawEvent, error) {
	ts, pool, err := loadActions(o)
	if err != nil {
		return nil, nil, err
	}
	var plans []plan
	var events []core.RawEvent
	for i, t := range ts {
		start := base.Add(time.Duration(i) * 20 * time.Second)
		r := t.ReplayAction(start, fmt.Sprintf("-grid%02d", i), "bench-grid", fmt.Sprintf("%s#%d", t.Name, i), expected, o.delivery)
		in, err := core.ParseIntegration([]byte(settingsFor(c, i)))
		if err != nil {
			return nil, nil, err
		}
		plans = append(plans, plan{in: in, action: r.Action, ids: r.IDs, visible: r.Visible})
		events = append(events, r.Events...)
	}
	// The background covers every run's read range, a minute more on each side.
	var from, to time.Time
	for i := range plans {
		rr := core.NewCorrelator(plans[i].in, &plans[i].action).ReadRange()
		if i == 0 || rr.From.Before(from) {
			from = rr.From
		}
		if i == 0 || rr.To.After(to) {
			to = rr.To
		}
	}
	events = append(events, benchcorpus.Background(pool, from.Add(-time.Minute), to.Add(time.Minute), c.perMinute, region, "busy")...)
	for i := range plans {
		rr := core.NewCorrelator(plans[i].in, &plans[i].action).ReadRange()
		for _, r := range plans[i].in.QueryRegions(&plans[i].action) {
			n := served(events, r, rr)
			plans[i].readEvents += n
			plans[i].lowerBound += max(1, (n+49)/50)
		}
	}
	return plans, events, nil
}

// served counts the management events a strict emulator serves to a query in region over
// [w.From, w.To]: the region's own records, and those whose awsRegion is not an AWS region.
func served(events []core.RawEvent, region string, w core.Window) int {
	n := 0
	for _, e := range events {
		if e.EventTime.Before(w.From) || e.EventTime.After(w.To) || strings.EqualFold(gjson.GetBytes(e.Record, "eventCategory").String(), "Insight") {
			continue
		}
		r := gjson.GetBytes(e.Record, "awsRegion").String()
		if r == "" {
			r = e.Region
		}
		if r == region || !emulator.IsAWSRegion(r) {
			n++
		}
	}
	return n
}

// runClock is the emulator's clock: each run's virtual clock in turn, so that one emulator (one
// copy of the corpus in memory) serves every run of a cell, each starting at its action's time
// as `trailproof run --corpus` does.
type runClock struct{ cur atomic.Pointer[clock.Virtual] }

func (c *runClock) Now() time.Time { return c.cur.Load().Now() }
func (c *runClock) Sleep(ctx context.Context, d time.Duration) error {
	return c.cur.Load().Sleep(ctx, d)
}

// measure runs a cell's actions one after the other and measures them.
// It stops at o.timeout, with what it has measured so far and Status "timeout".
func measure(ctx context.Context, c cell, expected bool, o options) (Result, error) {
	res := Result{Cell: c.String(), QueryTimeMinutes: c.queryTime, EventsPerMinute: c.perMinute, ExpectedEvents: expected,
		Delivery: o.delivery.String(), Status: "ok"}
	plans, events, err := build(c, expected, o)
	if err != nil {
		return res, err
	}
	rc := &runClock{}
	rc.cur.Store(clock.NewVirtual(base))
	var keys []emulator.Key
	for _, p := range plans {
		keys = append(keys, emulator.Key{AccessKeyID: p.in.AccessKeyID, SecretAccessKey: p.in.SecretAccessKey})
	}
	emu, err := emulator.New(events, emulator.WithClock(rc), emulator.WithDeliveryDelays(o.delivery), emulator.WithKeys(keys...), emulator.WithSeed(1))
	if err != nil {
		return res, err
	}
	res.CorpusEvents = emu.Len()
	srv, err := emulator.Serve(emu, "")
	if err != nil {
		return res, err
	}
	defer srv.Close()
	events = nil // the emulator holds its own copy, the corpus a run reads from
	runtime.GC()
	baseline := liveHeap()
	res.CorpusLiveHeapMB = mb(baseline)
	loadCPU := cpuSeconds()
	res.CorpusCPUSeconds = round(loadCPU)
	// A cancel, not a deadline: the engine reads a context's deadline as its Lambda's and stops
	// reading before it, which would change what is measured.
	ctx, cancel := context.WithCancel(ctx)
	defer time.AfterFunc(o.timeout, cancel).Stop()
	defer cancel()
	sampler := startHeapSampler(5 * time.Millisecond)
	defer sampler.stop()

	var found, total int
	for i := range plans {
		p := &plans[i]
		runtime.GC() // the last run's garbage is not the next one's
		vclk := clock.NewVirtual(p.action.StartTime)
		rc.cur.Store(vclk)
		before := cpuSeconds()
		wall := time.Now()
		sampler.reset()
		r, err := runOne(ctx, i, p, vclk, srv.URL())
		peak := sampler.reset()
		if ctx.Err() != nil {
			// -timeout: the runs measured so far, and how far this one got.
			res.Status = "timeout"
			res.Error = fmt.Sprintf("after %s: %d of %d runs measured; run %d", o.timeout, i, len(plans), i+1)
			if r != nil {
				res.Error += fmt.Sprintf(" at %s of virtual time (deadline %s), %d calls so far", vclk.Now().Sub(p.action.StartTime).Round(time.Minute),
					r.Window.To.Add(deadlineAfterWindow).Sub(p.action.StartTime), r.APICalls)
			}
			res.PeakLiveHeapAboveCorpusMB = mb(max(peak, baseline) - baseline)
			break
		}
		if err != nil {
			return res, fmt.Errorf("run %s: %w", p.action.ActionID, err)
		}
		rr := RunResult{Action: p.action.ActionID, LowerBound: p.lowerBound, ReadEvents: p.readEvents,
			CPUSeconds: round(cpuSeconds() - before), WallSeconds: round(time.Since(wall).Seconds()),
			PeakLiveHeapAboveCorpusMB: mb(max(peak, baseline) - baseline)}
		rr.Status, rr.APICalls, rr.Own = string(r.Status), r.APICalls, len(p.ids)
		for _, e := range r.Events {
			if p.ids[e.EventID] {
				rr.Matched++
			}
		}
		if r.CompletedAt != nil {
			rr.CompletedAfterVisibleSeconds = r.CompletedAt.Sub(p.visible).Seconds()
		}
		if r.LoggedAt != nil {
			v := r.LoggedAt.Sub(p.visible).Seconds()
			rr.LoggedAfterVisibleSeconds = &v
		}
		if r.Status != core.StatusCompleted {
			res.FailedRuns++
			fmt.Fprintf(os.Stderr, "benchgrid: cell %s run %s ended %s: %s\n", c, p.action.ActionID, r.Status, r.Error)
		}
		found += rr.Matched
		total += rr.Own
		res.PerRun = append(res.PerRun, rr)
	}
	res.CPUSecondsTotal = round(cpuSeconds())
	res.PeakRSSMB = maxRSSMB()
	res.summarize(found, total)
	return res, nil
}

// runOne is `trailproof run --corpus` for plan i: a fresh bolt store, the integration pointed at
// the emulator (the one endpoint allowed), the engine on the run's virtual clock, Execute.
func runOne(ctx context.Context, i int, p *plan, clk *clock.Virtual, url string) (*core.Run, error) {
	in := *p.in
	in.ID, in.Endpoint = fmt.Sprintf("grid-%d", i), url
	dir, err := os.MkdirTemp("", "benchgrid-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := bolt.Open(filepath.Join(dir, "trailproof.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.CreateIntegration(ctx, &in); err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	sources := cloudtrail.NewFactory(ctx, cloudtrail.WithClock(clk), cloudtrail.WithLogger(quiet),
		cloudtrail.WithPolicy(netguard.MustNew([]string{url}, nil)))
	eng := workflow.New(st, sources, workflow.WithClock(clk), workflow.WithLogger(quiet), workflow.WithAlertCompiler(alerts.Compiler()))
	action := p.action
	r, err := eng.CreateRun(ctx, in.ID, &action, "")
	if err != nil {
		return nil, err
	}
	done, err := eng.Execute(ctx, r.RunID, nil)
	if err != nil && ctx.Err() != nil {
		// Cut short by -timeout: the run as far as it got.
		return st.GetRun(context.WithoutCancel(ctx), r.RunID)
	}
	return done, err
}

func round(f float64) float64 { return math.Round(f*100) / 100 }

func mb(b uint64) float64 { return round(float64(b) / (1 << 20)) }
