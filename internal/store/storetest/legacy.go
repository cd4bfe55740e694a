package storetest

import (
	"encoding/json"
	"testing"

	"github.com/trailproof/trailproof/internal/core"
)

// LegacyRecord turns a stored run record (the JSON summary both stores keep) into the shape
// written before runs had a verdict: no verdict, and "logged": false even for a failed run.
func LegacyRecord(t *testing.T, record []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(record, &m); err != nil {
		t.Fatalf("stored run record: %v", err)
	}
	delete(m, "verdict")
	delete(m, "loggedAt")
	m["logged"], m["alerted"] = false, false
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CheckLegacyFailedRun checks that a failed run stored before runs had a verdict reads as
// unknown, with logged and alerted null, and nothing else lost.
func CheckLegacyFailedRun(t *testing.T, got *core.Run) {
	t.Helper()
	if got.Verdict != core.VerdictUnknown || got.Logged != nil || got.Alerted != nil {
		t.Errorf("a failed run stored before verdicts reads as verdict %q logged %v alerted %v, want unknown, null, null",
			got.Verdict, got.Logged, got.Alerted)
	}
	if got.Error != "TransientError: boom" || got.JobID != "job-42" || len(got.Expected) != 1 {
		t.Errorf("the legacy record lost data: %+v", got)
	}
}
