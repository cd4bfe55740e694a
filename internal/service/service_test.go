package service_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/service"
	"github.com/trailproof/trailproof/internal/store/storetest"
	"github.com/trailproof/trailproof/internal/testenv/teststack"
)

// actionDoc started an hour ago: inside CloudTrail's 90 days, as a run against AWS must be.
var actionDoc = `{"jobId": "job-42", "actionId": "A104-123", "startTime": "` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `",
	"actor": {"userAgentToken": "stratus-red-team_5c59eb79"}, "expectedEvents": ["ec2.amazonaws.com:GetPasswordData"]}`

func newService(t *testing.T) (*service.Service, core.Store) {
	t.Helper()
	stk := teststack.New(t, slog.New(slog.DiscardHandler), nil)
	if err := stk.Store.CreateIntegration(context.Background(), storetest.Integration("int-1")); err != nil {
		t.Fatal(err)
	}
	return service.New(stk.Store, stk.Engine, nil), stk.Store
}

func withRunID(id string) []byte {
	return []byte(strings.Replace(actionDoc, "{", `{"runId": "`+id+`", `, 1))
}

func TestStartRunIdempotent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      []byte
		key       string
		wantRunID string // "" when derived
	}{
		{"same runId", withRunID("run-7"), "", "run-7"},
		{"same Idempotency-Key", []byte(actionDoc), "director-job-42", ""},
		{"runId and the key it derives from", nil, "director-job-43", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, st := newService(t)
			ctx := context.Background()
			body := tc.body
			if body == nil {
				id, err := service.RunID("int-1", "", tc.key)
				if err != nil {
					t.Fatal(err)
				}
				body = withRunID(id)
			}
			first, replayed, err := svc.StartRun(ctx, "int-1", body, tc.key)
			if err != nil || replayed {
				t.Fatalf("first start: replayed %v, %v", replayed, err)
			}
			again, replayed, err := svc.StartRun(ctx, "int-1", body, tc.key)
			if err != nil || !replayed || again.RunID != first.RunID {
				t.Fatalf("second start: run %v (first %s), replayed %v, %v", again, first.RunID, replayed, err)
			}
			if tc.wantRunID != "" && first.RunID != tc.wantRunID {
				t.Errorf("run ID %q, want %q", first.RunID, tc.wantRunID)
			}
			if runs, _ := st.ListRuns(ctx); len(runs) != 1 {
				t.Errorf("%d runs stored, want 1", len(runs))
			}
		})
	}
}

// TestStartRunConcurrent: a Director that retries before its first request returned gets one
// run, whichever request the store serves first.
func TestStartRunConcurrent(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			run, _, err := svc.StartRun(ctx, "int-1", []byte(actionDoc), "retried-key")
			if err != nil {
				t.Errorf("start %d: %v", i, err)
				return
			}
			ids[i] = run.RunID
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Errorf("the same key started runs %q and %q", ids[0], id)
		}
	}
	if runs, _ := st.ListRuns(ctx); len(runs) != 1 {
		t.Errorf("%d runs stored, want 1", len(runs))
	}
}

func TestStartRunRefusals(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if _, _, err := svc.StartRun(ctx, "int-1", withRunID("run-1"), ""); err != nil {
		t.Fatal(err)
	}
	other := strings.Replace(string(withRunID("run-1")), "job-42", "job-43", 1)
	for _, tc := range []struct {
		name        string
		integration string
		body        string
		key         string
		code, field string
	}{
		{"the same runId for another action", "int-1", other, "", core.ECONFLICT, "runId"},
		{"runId and Idempotency-Key disagree", "int-1", string(withRunID("run-2")), "k", core.EINVALID, "runId"},
		{"an unprintable Idempotency-Key", "int-1", actionDoc, "a\x01b", core.EINVALID, "Idempotency-Key"},
		{"a runId no execution can have", "int-1", string(withRunID("has space")), "", core.EINVALID, "runId"},
		{"an integration that does not exist", "nope", actionDoc, "", core.ENOTFOUND, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := svc.StartRun(ctx, tc.integration, []byte(tc.body), tc.key)
			if core.ErrorCode(err) != tc.code {
				t.Fatalf("error %v, want code %s", err, tc.code)
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestDeleteIntegrationGuard(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	run, _, err := svc.StartRun(ctx, "int-1", []byte(actionDoc), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteIntegration(ctx, "int-1"); core.ErrorCode(err) != core.ECONFLICT || !strings.Contains(err.Error(), run.RunID) {
		t.Fatalf("delete with a waiting run: %v, want ECONFLICT naming %s", err, run.RunID)
	}
	run.Status = core.StatusCancelled
	run.SettleVerdict()
	if err := st.UpdateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteIntegration(ctx, "int-1"); err != nil {
		t.Fatalf("delete once the run ended: %v", err)
	}
	if _, _, err := svc.StartRun(ctx, "int-1", []byte(actionDoc), ""); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("start on the deleted integration: %v, want ENOTFOUND", err)
	}
}

func TestUpdateIntegration(t *testing.T) {
	svc, st := newService(t)
	ctx := context.Background()
	stored, _ := st.GetIntegration(ctx, "int-1")
	doc := `{"name": "renamed", "awsRegion": "eu-west-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
		"roleArn": "arn:aws:iam::123456789012:role/trailproof"}`
	in, err := svc.UpdateIntegration(ctx, "int-1", []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetIntegration(ctx, "int-1")
	if got.Name != "renamed" || got.SecretAccessKey != stored.SecretAccessKey || !got.CreatedAt.Equal(stored.CreatedAt) || in.UpdatedAt.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("after the update: name %q, secret kept %v, createdAt %v (was %v), updatedAt %v",
			got.Name, got.SecretAccessKey == stored.SecretAccessKey, got.CreatedAt, stored.CreatedAt, in.UpdatedAt)
	}
	refused := core.Errorf(core.EINVALID, "refused by policy")
	if _, err := svc.UpdateIntegration(ctx, "int-1", []byte(doc), func(*core.Integration) error { return refused }); err != refused {
		t.Errorf("a refusing check: %v", err)
	}
	other := strings.Replace(doc, "{", `{"id": "int-2", `, 1)
	if _, err := svc.UpdateIntegration(ctx, "int-1", []byte(other), nil); core.ErrorCode(err) != core.EINVALID || !strings.Contains(err.Error(), "id") {
		t.Errorf("an id other than the URL's: %v", err)
	}
}
