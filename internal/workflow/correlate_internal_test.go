package workflow

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// TestNewSpans: a correlate step examines the whole read range at its run's first look and when
// the ledger's log no longer reaches back to its last one; otherwise the spans of the reads logged
// since, clipped to the read range and joined where they overlap.
func TestNewSpans(t *testing.T) {
	read := core.Window{From: at(0), To: at(60)}
	l := &core.Ledger{}
	for _, r := range [][2]int{{-10, 5}, {10, 20}, {15, 30}, {50, 70}} {
		logRead(l, at(r[0]), at(r[1]))
		l.Version++ // the write that recorded it
	}
	all := []span{{at(0), at(60)}}
	for _, tc := range []struct {
		name string
		mark *core.StreamMark
		want []span
	}{
		{"first look", nil, all},
		{"every read new", &core.StreamMark{Version: 0}, []span{{at(0), at(5)}, {at(10), at(30)}, {at(50), at(60)}}},
		{"the last two new", &core.StreamMark{Version: 2}, []span{{at(15), at(30)}, {at(50), at(60)}}},
		{"nothing new", &core.StreamMark{Version: 4}, nil},
	} {
		if diff := cmp.Diff(tc.want, newSpans(l, tc.mark, read), cmp.AllowUnexported(span{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	// A log trimmed past a run's last look: the run examines everything again.
	for range readsKept {
		logRead(l, at(1), at(2))
		l.Version++
	}
	if len(l.Reads) != readsKept || l.ReadsFrom != 5 {
		t.Fatalf("log of %d reads from version %d, want %d from 5", len(l.Reads), l.ReadsFrom, readsKept)
	}
	if diff := cmp.Diff(all, newSpans(l, &core.StreamMark{Version: 3}, read), cmp.AllowUnexported(span{})); diff != "" {
		t.Errorf("trimmed past the mark (-want +got):\n%s", diff)
	}
	if got := newSpans(l, &core.StreamMark{Version: 4}, read); len(got) != 1 || !got[0].from.Equal(at(1)) {
		t.Errorf("trimmed up to the mark: %v, want the logged reads only", got)
	}
}
