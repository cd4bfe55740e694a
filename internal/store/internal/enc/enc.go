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
	"time"

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
}

// Split returns a copy of r without its result lists, and the lists.
func Split(r *core.Run) (*core.Run, Results) {
	summary := *r
	summary.Events, summary.Alerts, summary.Suspicious = nil, nil, nil
	return &summary, Results{Events: r.Events, Alerts: r.Alerts, Suspicious: r.Suspicious}
}

// Join puts the result lists back into a run.
func (res Results) Join(r *core.Run) {
	r.Events, r.Alerts, r.Suspicious = res.Events, res.Alerts, res.Suspicious
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

// Gzip compresses b.
func Gzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
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
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
