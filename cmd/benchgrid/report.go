package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
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
	// CPUSecondsPerRun is the mean over the runs of the child's user+system CPU (getrusage of
	// the whole process: engine, in-process emulator, GC) from a run's start to its end; what
	// it spent loading and generating the corpus (CorpusCPUSeconds) is not in it.
	CPUSecondsPerRun float64 `json:"cpuSecondsPerRun"`
	CorpusCPUSeconds float64 `json:"corpusCpuSeconds"`
	CPUSecondsTotal  float64 `json:"cpuSecondsTotal"` // the child's, everything included
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
	var calls, lb, read, done, logged, loggedN, cpu float64
	for _, p := range r.PerRun {
		cpu += p.CPUSeconds
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
	r.CPUSecondsPerRun = round(cpu / n)
}

// runChild measures one cell in a fresh process (this command with -cell). The child stops
// itself at o.timeout and reports how far it got; one that does not is killed killGrace later.
// The child's CPU and maxrss are read from the parent's wait (getrusage of the child).
func runChild(ctx context.Context, exe string, c cell, expected bool, o options) Result {
	res := Result{Cell: c.String(), QueryTimeMinutes: c.queryTime, EventsPerMinute: c.perMinute, ExpectedEvents: expected, Delivery: o.delivery.String()}
	ctx, cancel := context.WithTimeout(ctx, o.timeout+killGrace)
	defer cancel()
	args := []string{"-cell", c.String(), fmt.Sprintf("-with-expected=%t", expected), "-actions", o.actions,
		"-delivery-delay", o.delivery.String(), "-timeout", o.timeout.String()}
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
		res.Status, res.Error = "timeout", fmt.Sprintf("killed after %s (-timeout and %s)", o.timeout+killGrace, killGrace)
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
	}
	return res
}

// killGrace is how long past -timeout a child may take to report before it is killed.
const killGrace = 30 * time.Second

// writeTable prints the results as a Markdown table; a cell cut short by -timeout shows the runs
// it measured and says how far it got.
func writeTable(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| queryTime (min) | events/min | expected events | calls/run | lower bound/run | x lower bound | recall | "+
		"completed after last event searchable, mean / max (s) | loggedAt after last event searchable, mean / max (s) | CPU s/run | "+
		"engine peak live heap above corpus (MB) | process peak RSS, corpus included (MB) | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		cols := []string{fmt.Sprint(r.QueryTimeMinutes), fmt.Sprint(r.EventsPerMinute), fmt.Sprint(r.ExpectedEvents)}
		if r.Runs == 0 {
			cols = append(cols, "", "", "", "", "", "", "", "", "")
			if r.PeakLiveHeapAboveCorpusMB > 0 {
				cols[10] = fmt.Sprintf("≥ %.0f", r.PeakLiveHeapAboveCorpusMB) // so far
			}
		} else {
			cols = append(cols, fmt.Sprintf("%.1f", r.APICallsPerRun), fmt.Sprintf("%.1f", r.LowerBoundCallsPerRun), fmt.Sprintf("%.2f", r.CallsVsLowerBound),
				fmt.Sprintf("%.2f", r.Recall), fmt.Sprintf("%d / %d", secs(r.CompletedAfterVisibleMeanSeconds), secs(r.CompletedAfterVisibleMaxSeconds)),
				fmt.Sprintf("%d / %d", secs(r.LoggedAfterVisibleMeanSeconds), secs(r.LoggedAfterVisibleMaxSeconds)),
				fmt.Sprintf("%.2f", r.CPUSecondsPerRun), fmt.Sprintf("%.0f", r.PeakLiveHeapAboveCorpusMB), "")
		}
		if r.PeakRSSMB > 0 {
			cols[len(cols)-1] = fmt.Sprintf("%.0f", r.PeakRSSMB)
		}
		note := ""
		if r.FailedRuns > 0 {
			note = fmt.Sprintf("%d runs failed. ", r.FailedRuns)
		}
		if r.Status != "ok" {
			note += r.Status + ": " + r.Error
		}
		fmt.Fprintln(w, "| "+strings.Join(append(cols, strings.TrimSpace(note)), " | ")+" |")
	}
}

func secs(f float64) int { return int(math.Round(f)) }
