// Package service holds the rules for changing integrations and starting runs that do not depend
// on how a request arrives: an update that keeps stored secrets, the guard that keeps an
// integration with runs in progress, and the idempotent run start. `trailproof serve` and the
// Lambda API both reach it through internal/api, so the two cannot drift.
//
// The rules that two concurrent requests could break are the store's conditional writes, not
// checks made here first: core.Store's CreateRun refuses a second run with the same ID and a run
// whose integration is gone, and DeleteIntegration refuses while a run is in progress, each in one
// atomic step (see the store conformance suite).
package service

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/redact"
)

// RunCreator builds a run for an action and stores it (workflow.Engine): when the run ID is
// already stored it returns the stored run.
type RunCreator interface {
	CreateRun(ctx context.Context, integrationID string, a *core.Action, runID string) (*core.Run, error)
}

// Service applies the rules over a store.
type Service struct {
	store core.Store
	runs  RunCreator
	now   func() time.Time
}

// New returns a Service over store; runs creates runs in it; now dates integration updates.
func New(store core.Store, runs RunCreator, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, runs: runs, now: now}
}

// UpdateIntegration replaces integration id with the settings document doc, keeping the stored
// secrets doc does not send again (core.ParseIntegrationUpdate). check vets the result before it
// is stored (the API's endpoint policy). The answer keeps the stored createdAt.
func (s *Service) UpdateIntegration(ctx context.Context, id string, doc []byte, check func(*core.Integration) error) (*core.Integration, error) {
	stored, err := s.store.GetIntegration(ctx, id)
	if err != nil {
		return nil, err
	}
	in, err := core.ParseIntegrationUpdate(doc, stored)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(in); err != nil {
			return nil, err
		}
	}
	if in.ID != "" && in.ID != id {
		return nil, core.FieldError("id", "is %q but the URL names %q: leave id out or make them equal", redact.Truncate(in.ID, 128), id)
	}
	in.ID, in.CreatedAt, in.UpdatedAt = id, stored.CreatedAt, s.now().UTC()
	if err := s.store.UpdateIntegration(ctx, in); err != nil {
		return nil, err
	}
	return in, nil
}

// DeleteIntegration removes integration id unless one of its runs is waiting or querying
// (ECONFLICT naming the run). The store decides both in one step.
func (s *Service) DeleteIntegration(ctx context.Context, id string) error {
	return s.store.DeleteIntegration(ctx, id)
}

// idempotencyNamespace derives run IDs from Idempotency-Key headers (UUID v5), so the same key
// for the same integration always names the same run.
var idempotencyNamespace = uuid.MustParse("6f0d4c52-3d5e-4b8e-9a51-0c7a3f1e2b90")

// StartRun creates the run that body (an action, with an optional runId) asks for on integration
// integrationID, or returns the one an earlier request with the same run ID or idempotencyKey
// created (replayed true). A repeat that names another integration or action is ECONFLICT. The
// run's ID is the body's runId, else one derived from idempotencyKey, else a new UUID.
func (s *Service) StartRun(ctx context.Context, integrationID string, body []byte, idempotencyKey string) (run *core.Run, replayed bool, err error) {
	fromBody, action, err := core.ParseRunStart(body)
	if err != nil {
		return nil, false, err
	}
	runID, err := RunID(integrationID, fromBody, idempotencyKey)
	if err != nil {
		return nil, false, err
	}
	run, err = s.store.GetRun(ctx, runID)
	switch {
	case err == nil:
		replayed = true
	case core.ErrorCode(err) == core.ENOTFOUND:
		// CreateRun is the store's conditional write: of two starts racing with the same ID,
		// one stores the run and the other gets the stored one back.
		if run, err = s.runs.CreateRun(ctx, integrationID, action, runID); err != nil {
			return nil, false, err
		}
	default:
		return nil, false, err
	}
	if run.IntegrationID != integrationID || !sameAction(&run.Action, action) {
		return nil, false, &core.Error{Code: core.ECONFLICT, Field: "runId", Message: "run " + runID +
			" already exists for another integration or action; use a new runId (or Idempotency-Key) for a new run"}
	}
	return run, replayed, nil
}

// RunID picks a run's ID from the body's runId and the Idempotency-Key header (either may be
// ""): giving both is allowed only if they agree.
func RunID(integrationID, fromBody, idempotencyKey string) (string, error) {
	if idempotencyKey == "" {
		if fromBody != "" {
			return fromBody, nil
		}
		return uuid.NewString(), nil
	}
	if len(idempotencyKey) > 255 || strings.ContainsFunc(idempotencyKey, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "", core.FieldError("Idempotency-Key", "must be 1 to 255 printable characters")
	}
	derived := uuid.NewSHA1(idempotencyNamespace, []byte(integrationID+"\x00"+idempotencyKey)).String()
	if fromBody != "" && fromBody != derived {
		return "", core.FieldError("runId", "and the Idempotency-Key header name different runs: send one of them")
	}
	return derived, nil
}

// sameAction reports whether a repeated start request carries the action the run was made for.
func sameAction(a, b *core.Action) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
