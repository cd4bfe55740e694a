package workflow_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
)

// staggeredEvents is a job's actions started apart, over background noise: an event every 2 s from
// 6 minutes before the first start to 6 minutes after the last, and for action i five events
// carrying tok-i in the seconds after its start (own maps their IDs to i).
func staggeredEvents(start time.Time, runs int, apart time.Duration) (evs []core.RawEvent, own map[string]int) {
	for k, ev := range syntheticEvents(start.Add(-6*time.Minute), int((12*time.Minute+time.Duration(runs)*apart)/time.Second), 1) {
		if k%2 == 0 {
			ev.Record = []byte(strings.Replace(string(ev.Record), "tool tok-0", "background", 1))
			evs = append(evs, ev)
		}
	}
	own = map[string]int{}
	for i := range runs {
		for k, ev := range syntheticEvents(start.Add(time.Duration(i)*apart+time.Second), 5, 1) {
			id := fmt.Sprintf("a%d-%d", i, k)
			ev.Record = []byte(strings.NewReplacer("tool tok-0", fmt.Sprintf("tool tok-%d", i), ev.EventID, id).Replace(string(ev.Record)))
			ev.EventID = id
			evs = append(evs, ev)
			own[id] = i
		}
	}
	return evs, own
}

// runStaggered runs n of the actions concurrently, checks that each run matches exactly its own
// events, and returns the LookupEvents calls they made in all.
func runStaggered(t *testing.T, start time.Time, evs []core.RawEvent, own map[string]int, n int, apart time.Duration, expected bool) int {
	t.Helper()
	clk := clock.NewVirtual(start)
	s := newSharedStack(t, openBolt(t), clk, evs, emulator.WithDeliveryDelay(5*time.Minute))
	s.integration(t, `{"name":"t","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"test-secret-value"}`)
	ctx := context.Background()
	var ids []string
	for i := range n {
		a := &core.Action{JobID: "j", ActionID: fmt.Sprintf("a%d", i), StartTime: start.Add(time.Duration(i) * apart),
			Actor: core.Actor{UserAgentToken: fmt.Sprintf("tok-%d", i)}}
		if expected {
			a.ExpectedEvents = []string{"ec2.amazonaws.com:DescribeInstances"}
		}
		r, err := s.eng.CreateRun(ctx, "it", a, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	if err := s.eng.Simulate(ctx, clk, ids...); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, id := range ids {
		r, err := s.store.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != core.StatusCompleted {
			t.Fatalf("run a%d: status %s (%s)", i, r.Status, r.Error)
		}
		total += r.APICalls
		var want []string
		for id, k := range own {
			if k == i {
				want = append(want, id)
			}
		}
		sort.Strings(want)
		if diff := cmp.Diff(want, eventIDs(r.Events)); diff != "" || r.Verdict != core.VerdictLogged {
			t.Errorf("run a%d: verdict %s; matched events (-its own +matched):\n%s", i, r.Verdict, diff)
		}
	}
	if calls := s.emu.Stats().Calls; calls != total {
		t.Errorf("the runs count %d calls, the emulator saw %d", total, calls)
	}
	return total
}

// TestSharedReadsStaggeredRuns: a job's actions start seconds apart, so their runs' windows differ
// by seconds and their reads fall due at different times (the read schedule). With and without
// expected events, each run matches exactly its own events, and ten runs together cost at most
// what two and a half runs cost alone (sharing nothing costs ten): a run that makes no call keeps
// its need registered, so whoever reads covers it, and runs whose windows end in the same query
// interval make their deadline read together.
func TestSharedReadsStaggeredRuns(t *testing.T) {
	const runs, apart = 10, 6 * time.Second
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	evs, own := staggeredEvents(start, runs, apart)
	for _, expected := range []bool{false, true} {
		t.Run(fmt.Sprintf("expected=%v", expected), func(t *testing.T) {
			solo := runStaggered(t, start, evs, own, 1, apart, expected)
			total := runStaggered(t, start, evs, own, runs, apart, expected)
			t.Logf("%d staggered runs: %d calls; one alone: %d", runs, total, solo)
			if 2*total > 5*solo {
				t.Errorf("%d staggered runs made %d calls, one alone %d: their reads are not shared", runs, total, solo)
			}
		})
	}
}
