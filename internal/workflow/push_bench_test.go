package workflow_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// PushRow is one line of the push benchmark: every detonation in a busy account, push on or off,
// with or without expected events.
type PushRow struct {
	Benchmark      string  `json:"benchmark"`
	Push           string  `json:"push"`
	ExpectedEvents bool    `json:"expectedEvents"`
	Runs           int     `json:"runs"`
	LoggedP50      float64 `json:"loggedAfterFirstEventP50Seconds"`
	LoggedP95      float64 `json:"loggedAfterFirstEventP95Seconds"`
	CompleteP50    float64 `json:"completedAfterLastEventP50Seconds"`
	CompleteP95    float64 `json:"completedAfterLastEventP95Seconds"`
	Recall         float64 `json:"recall"`
	CallsPerRun    float64 `json:"callsPerRun"`
}

// BenchmarkPush measures push on against push off over every Stratus detonation, each in a busy
// account (60 events a minute of TrailDiscover records), on the same clock and corpus: LookupEvents
// delivers 5 minutes late; the push delivers 30 s late and loses 5% (per EventId). It reports the
// time from the action's first event to loggedAt and from its last event to completion (P50, P95),
// recall at completion, and LookupEvents calls per run, one JSON line per row, then a table.
func BenchmarkPush(b *testing.B) {
	all, pool := busyCorpus(b)
	dets := detonations(b)
	var rows []PushRow
	for b.Loop() {
		rows = rows[:0]
		for _, expected := range []bool{false, true} {
			for _, on := range []bool{false, true} {
				rows = append(rows, pushRow(b, all, pool, dets, expected, on))
			}
		}
	}
	printJSONLines(rows)
	fmt.Println("| expected events | push | logged after first event P50 / P95 (s) | completed after last event P50 / P95 (s) | recall | calls/run |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %v | %s | %.0f / %.0f | %.0f / %.0f | %.3f | %.2f |\n", r.ExpectedEvents, r.Push, r.LoggedP50, r.LoggedP95,
			r.CompleteP50, r.CompleteP95, r.Recall, r.CallsPerRun)
	}
}

func pushRow(b *testing.B, all, pool []core.RawEvent, dets []detonation, expected, on bool) PushRow {
	row := PushRow{Benchmark: "push", Push: "off", ExpectedEvents: expected, Runs: len(dets)}
	delay, loss := time.Duration(0), 0.0
	if on {
		row.Push, delay, loss = "30s, 5% lost", 30*time.Second, 0.05
	}
	var logged, complete []time.Duration
	found, total, calls := 0, 0, 0
	for _, d := range dets {
		var names []string
		if expected {
			names = d.names
		}
		r := pushRun(b, all, pool, d, delay, loss, names...)
		last := d.first
		for _, ev := range all {
			if slices.Contains(d.ids, ev.EventID) && ev.EventTime.After(last) {
				last = ev.EventTime
			}
		}
		if r.LoggedAt != nil {
			logged = append(logged, r.LoggedAt.Sub(d.first))
		}
		if r.CompletedAt != nil {
			complete = append(complete, r.CompletedAt.Sub(last))
		}
		total += len(d.ids)
		for _, e := range r.Events {
			if slices.Contains(d.ids, e.EventID) {
				found++
			}
		}
		calls += r.APICalls
	}
	row.LoggedP50, row.LoggedP95 = percentile(logged, 50), percentile(logged, 95)
	row.CompleteP50, row.CompleteP95 = percentile(complete, 50), percentile(complete, 95)
	row.Recall = float64(found) / float64(total)
	row.CallsPerRun = round2(float64(calls) / float64(len(dets)))
	return row
}

// printJSONLines prints one JSON line per row, as `make bench` collects them.
func printJSONLines[T any](rows []T) {
	enc := json.NewEncoder(os.Stdout)
	for _, r := range rows {
		_ = enc.Encode(r)
	}
}

// percentile is the nearest-rank percentile p of ds, in seconds.
func percentile(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)].Seconds()
}
