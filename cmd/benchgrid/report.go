package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Result is one cell's JSON line.
type Result struct {
	Cell             string `json:"cell"` // queryTime x events a minute
	QueryTimeMinutes int    `json:"queryTimeMinutes"`
	EventsPerMinute  int    `json:"eventsPerMinute"`
	ExpectedEvents   bool   `json:"expectedEvents"`
	Delivery         string `json:"delivery"`
	// Status is ok, timeout (the child outlasted -timeout and was killed) or error.
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
	Runs       int    `json:"runs"`
	FailedRuns int    `json:"failedRuns"`
	// CorpusEvents is how many records the emulator holds (actions and background).
	CorpusEvents          int     `json:"corpusEvents"`
	ReadEventsPerRun      float64 `json:"readEventsPerRun"` // events in a run's read range
	APICallsPerRun        float64 `json:"apiCallsPerRun"`
	LowerBoundCallsPerRun float64 `json:"lowerBoundCallsPerRun"`
	CallsVsLowerBound     float64 `json:"callsVsLowerBound"`
	Recall                float64 `json:"recall"`
	// Verdict latency from the action's last event becoming searchable.
	CompletedAfterVisibleMeanSeconds float64 `json:"completedAfterVisibleMeanSeconds"`
	CompletedAfterVisibleMaxSeconds  float64 `json:"completedAfterVisibleMaxSeconds"`
	LoggedAfterVisibleMeanSeconds    float64 `json:"loggedAfterVisibleMeanSeconds"`
	LoggedAfterVisibleMaxSeconds     float64 `json:"loggedAfterVisibleMaxSeconds"`
	// CPUSecondsPerRun is the child's user+system CPU (getrusage) less what it spent before the
	// first run (loading and generating the corpus, starting the emulator), over the runs.
	CPUSecondsPerRun float64 `json:"cpuSecondsPerRun"`
	CorpusCPUSeconds float64 `json:"corpusCpuSeconds"`
	CPUSecondsTotal  float64 `json:"cpuSecondsTotal"`
	// PeakLiveHeapAboveCorpusMB is the largest live heap a GC found during a run, less the live
	// heap with the corpus loaded and no run (CorpusLiveHeapMB); the largest over the runs.
	PeakLiveHeapAboveCorpusMB float64 `json:"peakLiveHeapAboveCorpusMB"`
	CorpusLiveHeapMB          float64 `json:"corpusLiveHeapMB"`
	// PeakRSSMB is the child process's maxrss: the corpus, the emulator and every run.
	PeakRSSMB   float64     `json:"peakRssMB"`
	WallSeconds float64     `json:"wallSeconds"` // the child's, corpus included
	PerRun      []RunResult `json:"perRun,omitempty"`
}

// RunResult is one action's run.
type RunResult struct {
	Action                       string   `json:"action"`
	Status                       string   `json:"status"`
	APICalls                     int      `json:"apiCalls"`
	LowerBound                   int      `json:"lowerBound"`
	ReadEvents                   int      `json:"readEvents"`
	Own                          int      `json:"ownEvents"`
	Matched                      int      `json:"matchedOwnEvents"`
	CompletedAfterVisibleSeconds float64  `json:"completedAfterVisibleSeconds"`
	LoggedAfterVisibleSeconds    *float64 `json:"loggedAfterVisibleSeconds"` // nil: never logged
	CPUSeconds                   float64  `json:"cpuSeconds"`
	WallSeconds                  float64  `json:"wallSeconds"`
	PeakLiveHeapAboveCorpusMB    float64  `json:"peakLiveHeapAboveCorpusMB"`
}

// summarize fills the cell's figures from its runs.
func (r *Result) summarize(found, total int) {
	r.Runs = len(r.PerRun)
	if r.Runs == 0 {
		return
	}
	var calls, lb, read, done, logged, loggedN float64
	for _, p := range r.PerRun {
		calls += float64(p.APICalls)
		lb += float64(p.LowerBound)
		read += float64(p.ReadEvents)
		done += p.CompletedAfterVisibleSeconds
		r.CompletedAfterVisibleMaxSeconds = max(r.CompletedAfterVisibleMaxSeconds, p.CompletedAfterVisibleSeconds)
		if p.LoggedAfterVisibleSeconds != nil {
			logged += *p.LoggedAfterVisibleSeconds
			if loggedN == 0 || *p.LoggedAfterVisibleSeconds > r.LoggedAfterVisibleMaxSeconds {
				r.LoggedAfterVisibleMaxSeconds = *p.LoggedAfterVisibleSeconds
			}
			loggedN++
		}
		r.PeakLiveHeapAboveCorpusMB = max(r.PeakLiveHeapAboveCorpusMB, p.PeakLiveHeapAboveCorpusMB)
	}
	n := float64(r.Runs)
	r.APICallsPerRun, r.LowerBoundCallsPerRun, r.ReadEventsPerRun = round(calls/n), round(lb/n), round(read/n)
	r.CallsVsLowerBound = round(calls / lb)
	r.CompletedAfterVisibleMeanSeconds = round(done / n)
	if loggedN > 0 {
		r.LoggedAfterVisibleMeanSeconds = round(logged / loggedN)
	}
	if total > 0 {
		r.Recall = round(float64(found) / float64(total))
	}
	r.CPUSecondsPerRun = round((r.CPUSecondsTotal - r.CorpusCPUSeconds) / n)
}

// runChild measures one cell in a fresh process (this command with -cell), killed after
// o.timeout. The child's CPU and maxrss are read from the parent's wait (getrusage of the child).
func runChild(ctx context.Context, exe string, c cell, expected bool, o options) Result {
	res := Result{Cell: c.String(), QueryTimeMinutes: c.queryTime, EventsPerMinute: c.perMinute, ExpectedEvents: expected, Delivery: o.delivery.String()}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	args := []string{"-cell", c.String(), fmt.Sprintf("-with-expected=%t", expected), "-actions", o.actions, "-delivery-delay", o.delivery.String()}
	if o.data != "" {
		args = append(args, "-data", o.data)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	start := time.Now()
	err := cmd.Run()
	res.WallSeconds = round(time.Since(start).Seconds())
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.Status, res.Error = "timeout", fmt.Sprintf("killed after %s (-timeout)", o.timeout)
		return res
	case err != nil:
		res.Status, res.Error = "error", err.Error()
		return res
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		res.Status, res.Error = "error", fmt.Sprintf("child output: %v", err)
		return res
	}
	res.WallSeconds = round(time.Since(start).Seconds())
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSMB = round(float64(ru.Maxrss) / 1024) // kilobytes on Linux
		res.CPUSecondsTotal = round(tv(ru.Utime) + tv(ru.Stime))
		res.CPUSecondsPerRun = round((res.CPUSecondsTotal - res.CorpusCPUSeconds) / float64(max(res.Runs, 1)))
	}
	return res
}

// writeTable prints the results as a Markdown table.
func writeTable(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| queryTime (min) | events/min | expected events | calls/run | lower bound/run | x lower bound | recall | completed after last event searchable, mean / max (s) | loggedAt after last event searchable, mean / max (s) | CPU s/run | engine peak live heap above corpus (MB) | process peak RSS, corpus included (MB) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	rs = slices.Clone(rs)
	for _, r := range rs {
		cols := []string{fmt.Sprint(r.QueryTimeMinutes), fmt.Sprint(r.EventsPerMinute), fmt.Sprint(r.ExpectedEvents)}
		if r.Status != "ok" {
			cols = append(cols, r.Status+": "+r.Error)
			for len(cols) < 12 {
				cols = append(cols, "")
			}
		} else {
			recall := fmt.Sprintf("%.2f", r.Recall)
			if r.FailedRuns > 0 {
				recall += fmt.Sprintf(" (%d failed)", r.FailedRuns)
			}
			cols = append(cols, fmt.Sprintf("%.1f", r.APICallsPerRun), fmt.Sprintf("%.1f", r.LowerBoundCallsPerRun), fmt.Sprintf("%.2f", r.CallsVsLowerBound),
				recall, fmt.Sprintf("%.0f / %.0f", r.CompletedAfterVisibleMeanSeconds, r.CompletedAfterVisibleMaxSeconds),
				fmt.Sprintf("%.0f / %.0f", r.LoggedAfterVisibleMeanSeconds, r.LoggedAfterVisibleMaxSeconds),
				fmt.Sprintf("%.2f", r.CPUSecondsPerRun), fmt.Sprintf("%.0f", r.PeakLiveHeapAboveCorpusMB), fmt.Sprintf("%.0f", r.PeakRSSMB))
		}
		fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
	}
}
