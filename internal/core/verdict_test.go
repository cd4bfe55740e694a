package core

import (
	"encoding/json"
	"testing"
	"time"
)

func TestVerdict(t *testing.T) {
	t0 := time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC)
	tests := []struct {
		name        string
		steps       func(r *Run)
		wantVerdict string
		wantLogged  *bool
		wantAlerted *bool
		wantAt      bool
	}{
		{"waiting", func(r *Run) { r.Status = StatusWaiting; r.SettleVerdict() }, VerdictUnknown, nil, nil, false},
		{"querying, nothing yet", func(r *Run) { r.Status = StatusQuerying; r.MarkLogged(false, t0) }, VerdictUnknown, nil, nil, false},
		{"querying, matched early", func(r *Run) { r.Status = StatusQuerying; r.MarkLogged(true, t0) }, VerdictLogged, ptr(true), nil, true},
		{"completed, nothing", func(r *Run) { r.Status = StatusCompleted; r.MarkLogged(false, t0) }, VerdictNotLogged, ptr(false), ptr(false), false},
		{"completed, logged and alerted", func(r *Run) {
			r.Status = StatusQuerying
			r.MarkLogged(true, t0)
			r.MarkAlerted(true)
			r.Status = StatusCompleted
			r.SettleVerdict()
		}, VerdictLogged, ptr(true), ptr(true), true},
		{"logged never turns back", func(r *Run) {
			r.Status = StatusQuerying
			r.MarkLogged(true, t0)
			r.MarkLogged(false, t0.Add(time.Minute))
			r.MarkAlerted(true)
			r.MarkAlerted(false)
			r.Status = StatusCompleted
			r.SettleVerdict()
		}, VerdictLogged, ptr(true), ptr(true), true},
		{"failed before any match", func(r *Run) { r.Status = StatusFailed; r.SettleVerdict() }, VerdictUnknown, nil, nil, false},
		{"failed after a match keeps logged true", func(r *Run) {
			r.Status = StatusQuerying
			r.MarkLogged(true, t0)
			r.Status = StatusFailed
			r.SettleVerdict()
		}, VerdictUnknown, ptr(true), nil, true},
		{"cancelled", func(r *Run) { r.Status = StatusCancelled; r.SettleVerdict() }, VerdictUnknown, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Run{}
			tt.steps(r)
			if r.Verdict != tt.wantVerdict || !sameBool(r.Logged, tt.wantLogged) || !sameBool(r.Alerted, tt.wantAlerted) {
				t.Errorf("verdict %s logged %s alerted %s, want %s %s %s", r.Verdict, show(r.Logged), show(r.Alerted),
					tt.wantVerdict, show(tt.wantLogged), show(tt.wantAlerted))
			}
			if (r.LoggedAt != nil) != tt.wantAt || (r.LoggedAt != nil && !r.LoggedAt.Equal(t0)) {
				t.Errorf("loggedAt %v, want set %v (at the first match %v)", r.LoggedAt, tt.wantAt, t0)
			}
		})
	}
}

// TestUpgradeStoredRuns reads records written before runs had a verdict: a failed or unfinished
// run said "logged": false, which must now read as unknown, and a completed one keeps its answer.
func TestUpgradeStoredRuns(t *testing.T) {
	tests := []struct {
		record      string
		wantVerdict string
		wantLogged  *bool
		wantAlerted *bool
	}{
		{`{"runId":"a","status":"failed","logged":false,"alerted":false,"error":"TransientError: boom"}`, VerdictUnknown, nil, nil},
		{`{"runId":"b","status":"cancelled","logged":false,"alerted":false}`, VerdictUnknown, nil, nil},
		{`{"runId":"c","status":"querying","logged":false,"alerted":false}`, VerdictUnknown, nil, nil},
		{`{"runId":"d","status":"querying","logged":true,"alerted":false}`, VerdictLogged, ptr(true), nil},
		{`{"runId":"e","status":"completed","logged":false,"alerted":false}`, VerdictNotLogged, ptr(false), ptr(false)},
		{`{"runId":"f","status":"completed","logged":true,"alerted":true}`, VerdictLogged, ptr(true), ptr(true)},
		// A current record is left as it is.
		{`{"runId":"g","status":"querying","verdict":"unknown","logged":null,"alerted":null}`, VerdictUnknown, nil, nil},
	}
	for _, tt := range tests {
		var r Run
		if err := json.Unmarshal([]byte(tt.record), &r); err != nil {
			t.Fatalf("%s: %v", tt.record, err)
		}
		r.Upgrade()
		if r.Verdict != tt.wantVerdict || !sameBool(r.Logged, tt.wantLogged) || !sameBool(r.Alerted, tt.wantAlerted) {
			t.Errorf("%s: verdict %s logged %s alerted %s, want %s %s %s", tt.record, r.Verdict, show(r.Logged), show(r.Alerted),
				tt.wantVerdict, show(tt.wantLogged), show(tt.wantAlerted))
		}
	}
}

func sameBool(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show(b *bool) string {
	if b == nil {
		return "null"
	}
	if *b {
		return "true"
	}
	return "false"
}
