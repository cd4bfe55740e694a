package server_test

import (
	"fmt"
	"github.com/trailproof/trailproof/internal/testenv"
	"sync"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/core"
)

// TestSharedReads: runs of one integration whose windows overlap share their CloudTrail reads in
// serve: five runs of the same action make far fewer LookupEvents calls together than five times
// what one run makes alone, and each gets exactly the detonation's events.
func TestSharedReads(t *testing.T) {
	tq := findTechnique(t, loadTechniques(t), "ec2-get-password-data")
	calls := map[int]int{}
	for _, n := range []int{1, 5} {
		anchor := time.Now().UTC().Add(-50 * time.Second).Truncate(time.Second)
		em, url := startEmulator(t, retime(t, tq.records, anchor))
		srv, c := startServer(t, t.TempDir(), &testenv.Buffer{})
		c.must(201, c.do("POST", "/v1/integrations", settings("shared", url)), nil)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := map[string]any{"runId": fmt.Sprintf("s%d-%d", n, i), "jobId": "job", "actionId": tq.name,
					"startTime": anchor.Format(time.RFC3339), "actor": map[string]any{"userAgentToken": tq.userAgent}}
				c.must(202, c.do("POST", "/v1/integrations/shared/runs", body), nil)
			})
		}
		wg.Wait()
		for i := range n {
			run := c.waitRun(fmt.Sprintf("s%d-%d", n, i), 60*time.Second, core.StatusCompleted, core.StatusFailed)
			var full api.RunView
			c.must(200, c.do("GET", fmt.Sprintf("/v1/runs/s%d-%d?limit=1000", n, i), nil), &full)
			if run.Status != core.StatusCompleted || len(full.Events) != tq.matching() {
				t.Errorf("%d runs: run %d %s with %d events, want completed with %d", n, i, run.Status, len(full.Events), tq.matching())
			}
		}
		calls[n] = em.Stats().Calls
		shutdown(t, srv)
	}
	t.Logf("LookupEvents calls: one run %d, five runs together %d", calls[1], calls[5])
	if calls[5] >= 3*calls[1] {
		t.Errorf("five runs of one window made %d calls, one run alone %d: the reads are not shared", calls[5], calls[1])
	}
}
