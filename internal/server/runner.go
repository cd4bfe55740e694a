package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Runner is the local api.RunStarter: each run executes in its own goroutine through
// workflow.Engine.Execute, which keeps the run's state in the store after every step. Stopping the
// Runner (Close) interrupts the executions without failing their runs, so the next Runner on the
// same store resumes them where they were (Resume).
type Runner struct {
	eng   *workflow.Engine
	store core.RunStore
	log   *slog.Logger

	base context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	running map[string]context.CancelFunc
	closed  bool
	wg      sync.WaitGroup
}

// NewRunner returns a Runner executing runs of store with eng.
func NewRunner(eng *workflow.Engine, store core.RunStore, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, stop := context.WithCancel(context.Background())
	return &Runner{eng: eng, store: store, log: log, base: base, stop: stop, running: map[string]context.CancelFunc{}}
}

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("the run executor is shutting down")

// Start executes runID in the background unless it is executing already. The request's context
// is not the execution's: a run outlives the request that started it.
func (r *Runner) Start(_ context.Context, runID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if _, ok := r.running[runID]; ok {
		return nil
	}
	ctx, cancel := context.WithCancel(r.base)
	r.running[runID] = cancel
	r.wg.Add(1)
	go r.execute(ctx, runID)
	return nil
}

func (r *Runner) execute(ctx context.Context, runID string) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		if cancel, ok := r.running[runID]; ok {
			cancel()
			delete(r.running, runID)
		}
		r.mu.Unlock()
	}()
	run, err := r.eng.Execute(ctx, runID, nil)
	switch {
	case err != nil && ctx.Err() != nil:
		r.log.Info("run execution stopped", "runId", runID, "reason", context.Cause(ctx).Error())
	case err != nil:
		r.log.Error("run execution failed", "runId", runID, "error", err.Error())
	default:
		r.log.Info("run ended", "runId", runID, "status", run.Status, "queries", run.Queries,
			"apiCalls", run.APICalls, "events", len(run.Events), "verdict", run.Verdict)
	}
}

// Cancel stops the execution of runID; the store already records the run as cancelled.
func (r *Runner) Cancel(_ context.Context, runID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cancel, ok := r.running[runID]; ok {
		cancel()
	}
	return nil
}

// Running returns how many runs are executing.
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.running)
}

// Resume starts every run the store has waiting or querying: the runs an earlier process was
// executing when it stopped. It returns how many it started.
func (r *Runner) Resume(ctx context.Context) (int, error) {
	runs, err := r.store.ListRuns(ctx, core.StatusWaiting, core.StatusQuerying)
	if err != nil {
		return 0, fmt.Errorf("resume runs: %w", err)
	}
	for _, run := range runs {
		if err := r.Start(ctx, run.RunID); err != nil {
			return 0, fmt.Errorf("resume run %s: %w", run.RunID, err)
		}
		r.log.Info("run resumed", "runId", run.RunID, "status", run.Status, "queries", run.Queries)
	}
	return len(runs), nil
}

// Close interrupts every execution and waits until each has returned. The runs keep their
// status (waiting or querying) for Resume.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stop()
	r.wg.Wait()
}
