package workflow

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

var b0 = time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)

func at(min int) time.Time { return b0.Add(time.Duration(min) * time.Minute) }

// TestMissing: what a fetch must read, given the ledger, at now (query interval 1 min here,
// settle time 10 min).
func TestMissing(t *testing.T) {
	const fresh, settle = time.Minute, 10 * time.Minute
	tests := []struct {
		name     string
		spans    []core.SpanRead
		from, to time.Time
		now      time.Time
		strict   bool
		want     []span
	}{
		{name: "nothing read", from: at(0), to: at(5), now: at(5), want: []span{{at(0), at(5)}}},
		{name: "read just now up to the present: covers later points while fresh",
			spans: []core.SpanRead{{From: at(-5), To: at(5), ReadAt: at(5)}},
			from:  at(0), to: at(6), now: at(6)},
		{name: "stale read",
			spans: []core.SpanRead{{From: at(-5), To: at(5), ReadAt: at(5)}},
			from:  at(0), to: at(7), now: at(7), want: []span{{at(0), at(7)}}},
		{name: "stale read, settled part kept",
			spans: []core.SpanRead{{From: at(-5), To: at(5), ReadAt: at(12)}},
			from:  at(0), to: at(14), now: at(14), want: []span{{at(2), at(14)}}},
		{name: "fresh, settled only in part, not at the last fetch",
			spans: []core.SpanRead{{From: at(-5), To: at(14), ReadAt: at(14)}},
			from:  at(0), to: at(5), now: at(15)},
		{name: "fresh, settled only in part, at the last fetch",
			spans: []core.SpanRead{{From: at(-5), To: at(14), ReadAt: at(14)}},
			from:  at(0), to: at(5), now: at(15), strict: true, want: []span{{at(4), at(5)}}},
		{name: "a hole between two reads",
			spans: []core.SpanRead{{From: at(0), To: at(2), ReadAt: at(30)}, {From: at(3), To: at(30), ReadAt: at(30)}},
			from:  at(0), to: at(30), now: at(30), want: []span{{at(2), at(3)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := missing(&core.Ledger{Spans: tt.spans}, tt.from, tt.to, tt.now.Add(-fresh), settle, tt.strict)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(span{})); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMergeRead: a newer read replaces what it covers; an older one only fills holes; settled
// neighbours coalesce, so the ledger stays small.
func TestMergeRead(t *testing.T) {
	const settle = 10 * time.Minute
	tests := []struct {
		name  string
		spans []core.SpanRead
		read  core.SpanRead
		want  []core.SpanRead
	}{
		{name: "first read", read: core.SpanRead{From: at(0), To: at(5), ReadAt: at(5)},
			want: []core.SpanRead{{From: at(0), To: at(5), ReadAt: at(5)}}},
		{name: "newer read over the end",
			spans: []core.SpanRead{{From: at(0), To: at(5), ReadAt: at(5)}},
			read:  core.SpanRead{From: at(3), To: at(6), ReadAt: at(6)},
			want:  []core.SpanRead{{From: at(0), To: at(3), ReadAt: at(5)}, {From: at(3), To: at(6), ReadAt: at(6)}}},
		{name: "older read (a slow concurrent writer) fills only what is not newer",
			spans: []core.SpanRead{{From: at(3), To: at(6), ReadAt: at(6)}},
			read:  core.SpanRead{From: at(0), To: at(5), ReadAt: at(5)},
			want:  []core.SpanRead{{From: at(0), To: at(3), ReadAt: at(5)}, {From: at(3), To: at(6), ReadAt: at(6)}}},
		{name: "settled neighbours coalesce",
			spans: []core.SpanRead{{From: at(0), To: at(3), ReadAt: at(20)}},
			read:  core.SpanRead{From: at(3), To: at(6), ReadAt: at(21)},
			want:  []core.SpanRead{{From: at(0), To: at(6), ReadAt: at(21)}}},
		{name: "spans older than the horizon drop",
			spans: []core.SpanRead{{From: at(-5000), To: at(-4000), ReadAt: at(-3000)}},
			read:  core.SpanRead{From: at(0), To: at(5), ReadAt: at(5)},
			want:  []core.SpanRead{{From: at(0), To: at(5), ReadAt: at(5)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeRead(tt.spans, tt.read, settle, at(5).Add(-ledgerKeep))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("merged (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSettledFrom walks settled spans across their ends and stops at the first unsettled point.
func TestSettledFrom(t *testing.T) {
	spans := []core.SpanRead{
		{From: at(0), To: at(3), ReadAt: at(20)},
		{From: at(3), To: at(8), ReadAt: at(15)}, // settled up to 5
		{From: at(8), To: at(9), ReadAt: at(30)},
	}
	if got := settledFrom(spans, at(0), 10*time.Minute); !got.Equal(at(5)) {
		t.Errorf("settled up to %s, want %s", got, at(5))
	}
}
