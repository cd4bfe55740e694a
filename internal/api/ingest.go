package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/push"
)

// IngestResult is the answer of POST /v1/ingest.
type IngestResult struct {
	Received int `json:"received"` // envelopes in the request
	Stored   int `json:"stored"`   // events new to the store (a repeated push stores nothing)
}

// ingest stores CloudTrail events pushed as EventBridge envelopes (one, or a JSON array of
// them) in their push partitions. Every envelope is checked before any is stored: a bad one
// fails the request (400 naming its index and field) and stores nothing, so the sender can fix
// and resend the batch whole.
func (h *Handler) ingest(w http.ResponseWriter, r *http.Request) error {
	body, err := h.readJSON(w, r, "EventBridge events (one, or a JSON array of them)", false)
	if err != nil {
		return err
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(body, &batch); err != nil {
		batch = []json.RawMessage{body} // a single envelope
	}
	evs := make([]push.Event, 0, len(batch))
	for i, b := range batch {
		ev, err := push.Decode(b)
		if err != nil {
			field := fmt.Sprintf("[%d]", i)
			if f := core.ErrorField(err); f != "" {
				field += "." + f
			}
			return &core.Error{Code: core.EINVALID, Field: field, Message: core.ErrorMessage(err)}
		}
		evs = append(evs, ev)
	}
	stored, failed := push.Add(r.Context(), h.cfg.Store, evs)
	if len(failed) > 0 {
		// The sender resends the batch: what was stored is stored once.
		return failed[slices.Sorted(maps.Keys(failed))[0]]
	}
	writeJSON(w, http.StatusOK, IngestResult{Received: len(batch), Stored: stored})
	return nil
}
