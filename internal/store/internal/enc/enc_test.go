package enc

import (
	"bytes"
	"encoding/json"
	"reflect"
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

// TestDecodeRaw: DecodeRaw reads what json.Marshal of a raw event wrote as encoding/json would,
// escapes, zones, a missing envelope and a null record included; and refuses what is not one.
func TestDecodeRaw(t *testing.T) {
	at := time.Date(2024, 7, 30, 21, 31, 5, 123456789, time.FixedZone("X", 3600))
	for _, ev := range []core.RawEvent{
		{EventID: "e\"1\u00e9", EventTime: at, Region: "eu-west-1", Category: "insight",
			Record: []byte(`{"eventID":"e1","userAgent":"a \"b\""}`), Envelope: []byte(`{"EventName":"X"}`)},
		{EventID: "e2", EventTime: at.UTC(), Record: []byte(`{"a":[1,2,{"b":null}]}`)},
		{EventID: "e3", EventTime: at},
	} {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var want core.RawEvent
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRaw(b)
		if err != nil {
			t.Fatalf("DecodeRaw(%s): %v", b, err)
		}
		if !got.EventTime.Equal(want.EventTime) || got.EventTime.Location().String() != want.EventTime.Location().String() {
			t.Errorf("%s: time %v, encoding/json says %v", ev.EventID, got.EventTime, want.EventTime)
		}
		got.EventTime = want.EventTime
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeRaw(%s) = %+v, encoding/json says %+v", b, got, want)
		}
	}
	for _, bad := range []string{`{"eventId":"x"`, `{"eventId":"x"}`, `{"eventId":"x","eventTime":"yesterday"}`} {
		if _, err := DecodeRaw([]byte(bad)); err == nil {
			t.Errorf("DecodeRaw(%s) accepted it", bad)
		}
	}
}

// TestGzipPooled: pooled writers and readers give back what went in, call after call.
func TestGzipPooled(t *testing.T) {
	for i := range 5 {
		in := bytes.Repeat([]byte{byte('a' + i)}, 1000*i)
		z, err := Gzip(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Gunzip(z)
		if err != nil || !bytes.Equal(in, out) {
			t.Fatalf("round %d: %d bytes back of %d, %v", i, len(out), len(in), err)
		}
	}
	if _, err := Gunzip([]byte("not gzip")); err == nil {
		t.Error("Gunzip of garbage succeeded")
	}
}
