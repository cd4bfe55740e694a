package workflow_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
)

// TestLateDelivery: when a tenth of the records arrive 12 minutes late (5m,12m@0.1), a run
// without expected events still matches every event of its detonation, the late ones included,
// and gives its verdict at the deadline (window end plus settleTime), not later: reading on a
// schedule must not settle the action's time before its late records can be read.
func TestLateDelivery(t *testing.T) {
	all := stratusCorpus(t)
	model, err := emulator.ParseDelays("5m,12m@0.1")
	if err != nil {
		t.Fatal(err)
	}
	late := 0
	for _, d := range detonations(t) {
		late += len(slices.DeleteFunc(slices.Clone(d.ids), func(id string) bool { return model.For(id) < 12*time.Minute }))
		t.Run(d.name, func(t *testing.T) {
			start := d.first.Add(-10 * time.Second)
			s := newStack(t, all, start, emulator.WithDeliveryDelays(model))
			in := s.integration(t, baseSettings)
			r := s.run(t, &core.Action{JobID: "j", ActionID: d.name, StartTime: start, Actor: core.Actor{UserAgentToken: d.token}})
			if r.Status != core.StatusCompleted || r.Verdict != core.VerdictLogged {
				t.Fatalf("status %s verdict %s error %q", r.Status, r.Verdict, r.Error)
			}
			if diff := cmp.Diff(d.ids, eventIDs(r.Events)); diff != "" {
				t.Errorf("matched events (-want +got):\n%s", diff)
			}
			deadline := start.Add(in.QueryTimeD() + in.SettleTimeD())
			if r.CompletedAt == nil || r.CompletedAt.After(deadline.Add(in.QueryIntervalD())) {
				t.Errorf("completed at %v, after the deadline %v and one query interval", r.CompletedAt, deadline)
			}
		})
	}
	if late == 0 {
		t.Fatal("no detonation record is delivered 12 minutes late: the test proves nothing")
	}
}
