package enc

import (
	"slices"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// TestTimeKeyOrder: byte order of keys is time order, whatever the fraction and the zone.
func TestTimeKeyOrder(t *testing.T) {
	base := time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC)
	times := []time.Time{
		base.Add(-time.Nanosecond),
		base,
		base.Add(time.Nanosecond),
		base.Add(500 * time.Millisecond).In(time.FixedZone("X", -7*3600)),
		base.Add(time.Second),
		base.Add(10 * time.Hour).In(time.FixedZone("Y", 9*3600)),
	}
	var keys []string
	for _, tm := range times {
		keys = append(keys, RawKey(core.RawEvent{EventID: "id", EventTime: tm}))
	}
	if !slices.IsSorted(keys) {
		t.Errorf("keys out of time order: %q", keys)
	}
	if k := RawKeyAfter(base); !(RawKey(core.RawEvent{EventID: "zzz", EventTime: base}) < k && k < RawKey(core.RawEvent{EventID: "a", EventTime: base.Add(time.Nanosecond)})) {
		t.Errorf("RawKeyAfter(%v) = %q does not bound the keys of that instant only", base, k)
	}
}

func TestCheckRaw(t *testing.T) {
	evs := []core.RawEvent{{EventID: "a", Region: "first"}, {EventID: "b"}, {EventID: "a", Region: "second"}}
	got, err := CheckRaw("p", evs)
	if err != nil || len(got) != 2 || got[0].Region != "first" {
		t.Errorf("CheckRaw = %+v, %v; want a (first) and b", got, err)
	}
	if _, err := CheckRaw("p", []core.RawEvent{{EventID: "a"}, {}}); core.ErrorField(err) != "events[1].eventId" {
		t.Errorf("empty EventID: %v, want a field error on events[1].eventId", err)
	}
	if _, err := CheckRaw("", nil); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("empty partition: %v, want EINVALID", err)
	}
}

func TestPackRoundTrip(t *testing.T) {
	res := Results{Events: []core.Event{{EventID: "e1", Raw: []byte(`{"a":1}`)}}, Alerts: []core.Event{}}
	p, err := res.Pack()
	if err != nil {
		t.Fatal(err)
	}
	q, _ := res.Pack()
	if p.Hash != q.Hash {
		t.Errorf("the same lists hash differently")
	}
	back, err := UnpackResults(p.Gzip)
	if err != nil || len(back.Events) != 1 || string(back.Events[0].Raw) != `{"a":1}` || back.Alerts == nil || back.Suspicious != nil {
		t.Errorf("UnpackResults = %+v, %v", back, err)
	}
	if _, err := UnpackResults([]byte("not gzip")); err == nil {
		t.Errorf("UnpackResults of garbage succeeded")
	}
}
