package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/trailproof/trailproof/internal/core"
)

// testDeleteGuard: an integration with a waiting or querying run cannot be deleted, a run cannot
// be created for an integration that is gone, and a delete racing run starts never leaves a run
// without its integration.
func testDeleteGuard(t *testing.T, s core.Store) {
	ctx := context.Background()
	in := Integration("guarded")
	must(t, "CreateIntegration", s.CreateIntegration(ctx, in))
	r := NewRun("guarded-run", core.StatusWaiting)
	r.IntegrationID = in.ID
	must(t, "CreateRun", s.CreateRun(ctx, r))

	err := s.DeleteIntegration(ctx, in.ID)
	wantCode(t, "DeleteIntegration with a waiting run", err, core.ECONFLICT)
	if err != nil && !strings.Contains(err.Error(), "guarded-run") {
		t.Errorf("the refusal does not name the run in progress: %v", err)
	}
	// An update of the integration keeps the guard (it must not drop what binds the runs).
	must(t, "UpdateIntegration", s.UpdateIntegration(ctx, in))
	wantCode(t, "DeleteIntegration after an update", s.DeleteIntegration(ctx, in.ID), core.ECONFLICT)

	r.Status = core.StatusQuerying
	must(t, "UpdateRun to querying", s.UpdateRun(ctx, r))
	wantCode(t, "DeleteIntegration with a querying run", s.DeleteIntegration(ctx, in.ID), core.ECONFLICT)
	r.Status = core.StatusCancelled
	r.SettleVerdict()
	must(t, "UpdateRun to cancelled", s.UpdateRun(ctx, r))
	must(t, "DeleteIntegration once its run ended", s.DeleteIntegration(ctx, in.ID))
	if _, err := s.GetRun(ctx, r.RunID); err != nil {
		t.Errorf("the ended run is gone with its integration: %v", err)
	}

	late := NewRun("late-run", core.StatusWaiting)
	late.IntegrationID = in.ID
	wantCode(t, "CreateRun for a deleted integration", s.CreateRun(ctx, late), core.ENOTFOUND)
	if _, err := s.GetRun(ctx, late.RunID); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("a refused run was stored: GetRun says %v", err)
	}
}

// testDeleteGuardRace starts runs (some with the same ID, as a retried request does) while the
// integration is deleted, many times over. Whatever the order the store picks, either the delete
// is refused and the integration stays with its runs, or it succeeds and no run was stored; a
// run ID is stored at most once.
func testDeleteGuardRace(t *testing.T, s core.Store) {
	ctx := context.Background()
	const rounds, starters = 15, 4
	deleted := 0
	for round := range rounds {
		id := fmt.Sprintf("race-%d", round)
		must(t, "CreateIntegration", s.CreateIntegration(ctx, Integration(id)))
		var wg sync.WaitGroup
		startErrs := make([]error, starters)
		var delErr error
		del := func() { delErr = s.DeleteIntegration(ctx, id) }
		if round%2 == 0 { // the scheduler favours the goroutine started last: vary who that is
			wg.Go(del)
		}
		for i := range starters {
			wg.Go(func() {
				r := NewRun(fmt.Sprintf("%s-run-%d", id, i%2), core.StatusWaiting) // two IDs, each started twice
				r.IntegrationID = id
				startErrs[i] = s.CreateRun(ctx, r)
			})
		}
		if round%2 == 1 {
			wg.Go(del)
		}
		wg.Wait()

		created := 0
		for i, err := range startErrs {
			switch code := core.ErrorCode(err); {
			case err == nil:
				created++
			case code == core.ECONFLICT: // the same run ID stored by the other starter
			case code == core.ENOTFOUND && delErr == nil: // started after the delete
			default:
				t.Errorf("round %d: CreateRun %d: %v", round, i, err)
			}
		}
		if created > 2 {
			t.Errorf("round %d: %d runs created from 2 run IDs", round, created)
		}
		_, getErr := s.GetIntegration(ctx, id)
		switch {
		case delErr == nil:
			deleted++
			if created > 0 {
				t.Errorf("round %d: the integration was deleted and %d of its runs were created", round, created)
			}
			for i := range 2 {
				if _, err := s.GetRun(ctx, fmt.Sprintf("%s-run-%d", id, i)); core.ErrorCode(err) != core.ENOTFOUND {
					t.Errorf("round %d: run %d of a deleted integration is stored (GetRun: %v)", round, i, err)
				}
			}
		case core.ErrorCode(delErr) == core.ECONFLICT:
			if created == 0 {
				t.Errorf("round %d: the delete was refused (%v) but no run was created", round, delErr)
			}
			if getErr != nil {
				t.Errorf("round %d: the delete was refused but the integration is gone: %v", round, getErr)
			}
		default:
			t.Errorf("round %d: DeleteIntegration: %v", round, delErr)
		}
	}
	t.Logf("%d of %d rounds deleted the integration first", deleted, rounds)
}
