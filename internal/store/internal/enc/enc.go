// Package enc holds the encodings both stores share, so that a run or a raw event is laid out
// the same way whichever store keeps it: sortable time keys, a run split into its small summary
// and its (possibly huge) result lists, and gzip'd JSON.
package enc

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/core"
)

// timeLayout is RFC 3339 in UTC with a fixed nine-digit fraction: RFC3339Nano trims trailing
// zeros, and "…05Z" would then sort after "…05.5Z".
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// TimeKey renders t so that byte order is time order.
func TimeKey(t time.Time) string { return t.UTC().Format(timeLayout) }

// RawKey is a raw event's sort key: its time key, '#', its ID. Events of one instant sort by ID.
func RawKey(ev core.RawEvent) string { return TimeKey(ev.EventTime) + "#" + ev.EventID }

// RawKeyAfter is the smallest key above every RawKey of the instant t, for inclusive upper
// bounds ('$' follows '#').
func RawKeyAfter(t time.Time) string { return TimeKey(t) + "$" }

// CheckRaw validates AddRawEvents' input and drops repeats of an EventID within evs (the first
// one is kept, as it would be across calls).
func CheckRaw(partition string, evs []core.RawEvent) ([]core.RawEvent, error) {
	if partition == "" {
		return nil, core.FieldError("partition", "a raw-event partition is required")
	}
	seen := make(map[string]bool, len(evs))
	out := make([]core.RawEvent, 0, len(evs))
	for i, ev := range evs {
		if ev.EventID == "" {
			return nil, core.FieldError(fmt.Sprintf("events[%d].eventId", i), "a raw event needs an EventID")
		}
		if seen[ev.EventID] {
			continue
		}
		seen[ev.EventID] = true
		out = append(out, ev)
	}
	return out, nil
}

// Results are a run's result lists, kept apart from the rest of the run because they can be tens
// of megabytes while the rest is a few kilobytes.
type Results struct {
	Events     []core.Event `json:"events"`
	Alerts     []core.Event `json:"alerts"`
	Suspicious []core.Event `json:"suspicious"`
	// Unkept grows with the matched events beyond the limit: it is kept here, compressed and
	// chunked like the lists, not in the run's small summary.
	Unkept core.Unkept `json:"unkept,omitzero"`
}

// Split returns a copy of r without its result lists, and the lists.
func Split(r *core.Run) (*core.Run, Results) {
	summary := *r
	summary.Events, summary.Alerts, summary.Suspicious, summary.Unkept = nil, nil, nil, core.Unkept{}
	return &summary, Results{Events: r.Events, Alerts: r.Alerts, Suspicious: r.Suspicious, Unkept: r.Unkept}
}

// Join puts the result lists back into a run.
func (res Results) Join(r *core.Run) {
	r.Events, r.Alerts, r.Suspicious, r.Unkept = res.Events, res.Alerts, res.Suspicious, res.Unkept
}

// Packed is Results as stored: gzip'd JSON, and the SHA-256 of the JSON so that an update whose
// lists did not change can skip rewriting them.
type Packed struct {
	Gzip []byte
	Hash string
}

// Pack encodes the result lists.
func (res Results) Pack() (Packed, error) {
	plain, err := json.Marshal(res)
	if err != nil {
		return Packed{}, fmt.Errorf("encode run results: %w", err)
	}
	sum := sha256.Sum256(plain)
	z, err := Gzip(plain)
	if err != nil {
		return Packed{}, fmt.Errorf("compress run results: %w", err)
	}
	return Packed{Gzip: z, Hash: hex.EncodeToString(sum[:])}, nil
}

// UnpackResults decodes what Pack produced.
func UnpackResults(z []byte) (Results, error) {
	var res Results
	plain, err := Gunzip(z)
	if err != nil {
		return res, fmt.Errorf("decompress run results: %w", err)
	}
	if err := json.Unmarshal(plain, &res); err != nil {
		return res, fmt.Errorf("decode run results: %w", err)
	}
	return res, nil
}

// Gzip writers and readers are pooled: a gzip.Writer holds about 800 KB of compression state,
// and the stores compress a run's results at every update and large raw events one by one.
var (
	writers = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}
	readers sync.Pool // *gzip.Reader; none until the first Gunzip (NewReader needs a stream)
)

// Gzip compresses b.
func Gzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := writers.Get().(*gzip.Writer)
	defer writers.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Gunzip decompresses b.
func Gunzip(b []byte) ([]byte, error) {
	var (
		r   *gzip.Reader
		err error
	)
	if pooled, ok := readers.Get().(*gzip.Reader); ok {
		r, err = pooled, pooled.Reset(bytes.NewReader(b))
	} else {
		r, err = gzip.NewReader(bytes.NewReader(b))
	}
	if err != nil {
		return nil, err
	}
	defer readers.Put(r)
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return out, r.Close()
}

// rawFields are the members of a raw event as encoding/json writes it (core.RawEvent's tags).
var rawFields = []string{"eventId", "eventTime", "region", "category", "record", "envelope"}

// DecodeRaw decodes a raw event as the stores wrote it (json.Marshal of a core.RawEvent). It
// reads the members in one pass and keeps the record and envelope as the bytes they are, where
// encoding/json would check and copy every byte of the record once more. The event refers to b:
// b must not change afterwards.
func DecodeRaw(b []byte) (core.RawEvent, error) {
	var ev core.RawEvent
	if !gjson.ValidBytes(b) {
		return ev, fmt.Errorf("not valid JSON")
	}
	res := gjson.GetManyBytes(b, rawFields...)
	if res[1].Type != gjson.String {
		return ev, fmt.Errorf("no eventTime")
	}
	t, err := time.Parse(time.RFC3339Nano, res[1].Str)
	if err != nil {
		return ev, fmt.Errorf("eventTime: %w", err)
	}
	ev.EventID, ev.EventTime, ev.Region, ev.Category = res[0].String(), t, res[2].String(), res[3].String()
	ev.Record, ev.Envelope = rawMember(b, res[4]), rawMember(b, res[5])
	return ev, nil
}

// rawMember is a member's JSON as a slice of b (nil when absent or null, as encoding/json leaves
// a json.RawMessage of an omitted member).
func rawMember(b []byte, r gjson.Result) []byte {
	if !r.Exists() {
		return nil
	}
	if r.Index > 0 {
		return b[r.Index : r.Index+len(r.Raw) : r.Index+len(r.Raw)]
	}
	return []byte(r.Raw)
}
