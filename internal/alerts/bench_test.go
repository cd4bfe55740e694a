package alerts

import (
	"encoding/json"
	"testing"

	"github.com/trailproof/trailproof/internal/core"
)

// BenchmarkMatch measures one evaluation per event over a representative record: a query that
// rejects on the normalized event alone (the record is never decoded), one that reads the record,
// and one with a comprehension over the record's resources.
func BenchmarkMatch(b *testing.B) {
	n := normalizer(b)
	rec := json.RawMessage(stopLogging)
	ev := normalize(b, n, rec)
	for _, bc := range []struct{ name, expr string }{
		{"event-only", `event.event_name == "DeleteTrail" && record.eventSource == "cloudtrail.amazonaws.com"`},
		{"record", `record.eventName in ["StopLogging", "DeleteTrail"] && !has(record.errorCode)`},
		{"comprehension", `record.resources.exists(r, r.type.matches("(?i)trail"))`},
		{"regex", `record.userIdentity.arn.matches("(?i)^arn:aws:iam::[0-9]{12}:user/")`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := mustCompile(b, bc.expr)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.Match(rec, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMatchStratus evaluates each testdata rule over all real Stratus detonation records,
// in parallel as a run's correlation would; ns/op is per event.
func BenchmarkMatchStratus(b *testing.B) {
	dets := loadDetonations(b)
	var recs []json.RawMessage
	var evs []core.Event
	for _, d := range dets {
		recs = append(recs, d.records...)
		evs = append(evs, d.events...)
	}
	for _, r := range rulesWithPrefix(b, "") {
		b.Run(r.file, func(b *testing.B) {
			q := mustCompile(b, r.expr)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := q.Match(recs[i], &evs[i]); err != nil {
						b.Error(err)
						return
					}
					i = (i + 1) % len(recs)
				}
			})
		})
	}
}
