package workflow_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

// TestHistoryRefused: against real CloudTrail (no endpoint override), a window wholly before
// LookupEvents' 90 days is refused with the dates; one that starts before them is noted; an
// emulator (an endpoint) keeps its own history.
func TestHistoryRefused(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for id, doc := range map[string]string{
		"real": `{"name":"real","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"s-secret"}`,
		"emu":  `{"name":"emu","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"s-secret","endpoint":"http://127.0.0.1:1"}`,
	} {
		in, err := core.ParseIntegration([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		in.ID = id
		if err := st.CreateIntegration(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	eng := workflow.New(st, nil, workflow.WithClock(clock.NewVirtual(now)))
	action := func(start time.Time) *core.Action {
		return &core.Action{JobID: "j", ActionID: "a", StartTime: start, Actor: core.Actor{UserAgentToken: "tok"}}
	}
	old := now.Add(-100 * 24 * time.Hour)
	_, err = eng.CreateRun(ctx, "real", action(old), "")
	if core.ErrorCode(err) != core.EINVALID || core.ErrorField(err) != "startTime" ||
		!strings.Contains(err.Error(), old.Add(-5*time.Minute).Format(time.RFC3339)) || !strings.Contains(err.Error(), "2026-09-01T12:00:00Z") {
		t.Errorf("a window 100 days old: %v; want invalid startTime naming the window and the history's start", err)
	}
	edge := now.Add(-core.History).Add(2 * time.Minute) // the window starts 3 minutes before the history
	r, err := eng.CreateRun(ctx, "real", action(edge), "")
	if err != nil {
		t.Fatalf("a window across the history's start: %v", err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "before CloudTrail's 90-day") {
		t.Errorf("a window across the history's start: warnings %v; want one about the history", r.Warnings)
	}
	if _, err := eng.CreateRun(ctx, "emu", action(old), ""); err != nil {
		t.Errorf("against an endpoint override: %v; want the run", err)
	}
}

// TestVerdictWhileQuerying: a run is unknown until something matches; logged then turns true
// (with loggedAt) while it still queries and never turns back; a run cancelled after that is
// unknown, with logged still true and alerted null, never false.
func TestVerdictWhileQuerying(t *testing.T) {
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	s := newStack(t, demoEvents(t), start)
	s.integration(t, demoSettings)
	ctx := context.Background()
	r, err := s.eng.CreateRun(ctx, "it", &core.Action{JobID: "j", ActionID: "a", StartTime: start,
		Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}, ExpectedEvents: []string{"ec2:NeverHappens"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != core.VerdictUnknown || r.Logged != nil || r.Alerted != nil {
		t.Fatalf("a new run: verdict %s logged %v alerted %v, want unknown, null, null", r.Verdict, r.Logged, r.Alerted)
	}
	var seen []string
	wasLogged := false
	cancelled := false
	_, err = s.eng.Execute(ctx, r.RunID, func(r *core.Run, _ time.Duration) {
		seen = append(seen, r.Status+"/"+r.Verdict)
		if r.Logged != nil && !*r.Logged {
			t.Errorf("a %s run says logged false", r.Status)
		}
		if wasLogged && !r.IsLogged() {
			t.Errorf("logged turned back to %v", r.Logged)
		}
		if r.IsLogged() {
			if r.Verdict != core.VerdictLogged || r.LoggedAt == nil {
				t.Errorf("logged while %s: verdict %s, loggedAt %v", r.Status, r.Verdict, r.LoggedAt)
			}
			wasLogged = true
			if !cancelled {
				cancelled = true
				if _, err := s.eng.Cancel(ctx, r.RunID); err != nil {
					t.Error(err)
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !wasLogged {
		t.Fatalf("logged never turned true while querying: %v", seen)
	}
	final, err := s.store.GetRun(ctx, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != core.StatusCancelled || final.Verdict != core.VerdictUnknown || !final.IsLogged() || final.Alerted != nil {
		t.Errorf("cancelled run: %s verdict %s logged %v alerted %v; want cancelled, unknown, true, null", final.Status, final.Verdict, final.Logged, final.Alerted)
	}
}
