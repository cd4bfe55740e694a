package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/trailproof/trailproof/internal/core"
)

// Paging limits.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Page says which part of a list an answer holds.
type Page struct {
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
	Total  int `json:"total"`
	// NextCursor fetches the next page; absent on the last one.
	NextCursor string `json:"nextCursor,omitempty"`
}

// RunView is a run as the API shows it: the run result with its events paged, without the
// workflow's bookkeeping (progress, version).
type RunView struct {
	*core.Run
	Events   []core.Event `json:"events"`
	Page     Page         `json:"page"`
	Progress *struct{}    `json:"progress,omitempty"`
	Version  *struct{}    `json:"version,omitempty"`
}

// EventPage is the answer of GET /v1/runs/{id}/events.
type EventPage struct {
	RunID  string       `json:"runId"`
	List   string       `json:"list"`
	Status string       `json:"status"`
	Events []core.Event `json:"events"`
	Page   Page         `json:"page"`
}

func (h *Handler) startRun(w http.ResponseWriter, r *http.Request) error {
	integrationID, err := pathID(r, "the integration")
	if err != nil {
		return err
	}
	body, err := h.readJSON(w, r, "the action", false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	run, replay, err := h.svc.StartRun(ctx, integrationID, body, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	runID, action := run.RunID, &run.Action
	if err := h.cfg.Runs.Start(ctx, runID); err != nil {
		h.log.ErrorContext(ctx, "cannot start run", "runId", runID, "error", err.Error())
		return core.Errorf(core.EINTERNAL, "run %s is stored but its workflow could not be started; repeat the request with the same runId to start it", runID)
	}
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		h.log.InfoContext(ctx, "run started", "runId", runID, "integration", integrationID, "jobId", action.JobID, "actionId", action.ActionID)
	}
	w.Header().Set("Location", "/v1/runs/"+runID)
	view, err := viewRun(run, DefaultPageLimit, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, view)
	return nil
}

func (h *Handler) getRun(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the run")
	if err != nil {
		return err
	}
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	run, err := h.cfg.Store.GetRun(r.Context(), id)
	if err != nil {
		return err
	}
	view, err := viewRun(run, limit, offset)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (h *Handler) runEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the run")
	if err != nil {
		return err
	}
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	list := r.URL.Query().Get("list")
	if list == "" {
		list = "events"
	}
	if list != "events" && list != "alerts" && list != "suspicious" {
		return core.FieldError("list", "must be events, alerts or suspicious")
	}
	run, err := h.cfg.Store.GetRun(r.Context(), id)
	if err != nil {
		return err
	}
	all := map[string][]core.Event{"events": run.Events, "alerts": run.Alerts, "suspicious": run.Suspicious}[list]
	items, page, err := pageOf(all, limit, offset)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, EventPage{RunID: run.RunID, List: list, Status: run.Status, Events: items, Page: page})
	return nil
}

func (h *Handler) cancelRun(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "the run")
	if err != nil {
		return err
	}
	ctx := r.Context()
	run, err := h.cfg.Engine.Cancel(ctx, id)
	if err != nil {
		return err
	}
	if err := h.cfg.Runs.Cancel(ctx, id); err != nil {
		// The store says cancelled, so the workflow stops at its next step whatever happens here.
		h.log.WarnContext(ctx, "cannot stop the run's execution; it stops at its next step", "runId", id, "error", err.Error())
	}
	h.log.InfoContext(ctx, "run cancelled", "runId", id)
	view, err := viewRun(run, DefaultPageLimit, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func viewRun(run *core.Run, limit, offset int) (*RunView, error) {
	items, page, err := pageOf(run.Events, limit, offset)
	if err != nil {
		return nil, err
	}
	v := &RunView{Run: run, Events: items, Page: page}
	if v.Run.Alerts == nil {
		v.Run.Alerts = []core.Event{}
	}
	if v.Run.Suspicious == nil {
		v.Run.Suspicious = []core.Event{}
	}
	if v.Run.Warnings == nil {
		v.Run.Warnings = []string{}
	}
	if v.Run.Expected == nil {
		v.Run.Expected = []core.ExpectedCount{}
	}
	return v, nil
}

// paging reads ?limit= and ?cursor= or ?offset=.
func paging(r *http.Request) (limit, offset int, err error) {
	q := r.URL.Query()
	limit = DefaultPageLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageLimit {
			return 0, 0, core.FieldError("limit", "must be a whole number from 1 to %d", MaxPageLimit)
		}
		limit = n
	}
	cursor, off := q.Get("cursor"), q.Get("offset")
	switch {
	case cursor != "" && off != "":
		return 0, 0, core.FieldError("cursor", "give cursor or offset, not both")
	case cursor != "":
		offset, ok := decodeCursor(cursor)
		if !ok {
			return 0, 0, core.FieldError("cursor", "is not a cursor this API gave out: use page.nextCursor of the previous page")
		}
		return limit, offset, nil
	case off != "":
		n, err := strconv.Atoi(off)
		if err != nil || n < 0 {
			return 0, 0, core.FieldError("offset", "must be a whole number, 0 or more")
		}
		return limit, n, nil
	}
	return limit, 0, nil
}

const cursorPrefix = "o1:"

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(offset)))
}

func decodeCursor(s string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func pageOf(all []core.Event, limit, offset int) ([]core.Event, Page, error) {
	p := Page{Limit: limit, Offset: offset, Total: len(all)}
	if offset > len(all) {
		offset = len(all)
	}
	end := min(offset+limit, len(all))
	items := all[offset:end]
	if items == nil {
		items = []core.Event{}
	}
	if end < len(all) {
		p.NextCursor = encodeCursor(end)
	}
	return items, p, nil
}
