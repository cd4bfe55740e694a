// Package workflow is the step logic of a correlation run: what one begin, fetch and correlate step
// does, and whether to go on and how long to wait. The Lambda functions call these steps unchanged
// from the Step Functions definition, which only sequences them; `trailproof run` and `serve`
// sequence them with Execute on a real or virtual clock.
package workflow

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
)

// State is the payload passed between steps: keys and counters only, never event lists, so it
// stays far below Step Functions' 256 KB payload limit.
type State struct {
	RunID       string `json:"runId"`
	Iteration   int    `json:"iteration"` // fetch steps applied so far
	Status      string `json:"status"`
	Done        bool   `json:"done"`
	WaitSeconds int    `json:"waitSeconds"` // how long to wait before the next step
	AlertsDue   bool   `json:"alertsDue"`   // the alerts step is due before the wait
	Events      int    `json:"events"`      // matched events so far
	RawEvents   int    `json:"rawEvents"`
	APICalls    int    `json:"apiCalls"`
}

// Step names, as the observer sees them and as the state machine's states call them.
const (
	StepBegin     = "begin"
	StepFetch     = "fetch"
	StepCorrelate = "correlate"
	StepAlerts    = "alerts"
	StepFail      = "fail"
)

// Observer is told every step the engine applies, with its input and output.
type Observer func(step string, in, out State)

// Engine runs the steps against a store, a CloudTrail source and a clock.
type Engine struct {
	store    core.Store
	sources  core.SourceFactory
	clock    clock.Clock
	log      *slog.Logger
	observer Observer
	retries  int
	compile  core.AlertCompiler

	// leasePoll is how often a fetch waiting for another run's read of a stream re-checks the
	// ledger (shared.go).
	leasePoll time.Duration
	push      bool // events are pushed to the store too (WithPush)
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets the clock (default: real time).
func WithClock(c clock.Clock) Option { return func(e *Engine) { e.clock = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithObserver registers an observer of every step.
func WithObserver(o Observer) Option { return func(e *Engine) { e.observer = o } }

// WithStepRetries sets how often Execute retries a step that failed with a retryable error, as
// the state machine's Retry does (default 6).
func WithStepRetries(n int) Option { return func(e *Engine) { e.retries = n } }

// WithAlertCompiler sets how Correlation Queries are compiled (internal/alerts.Compiler()). Without
// it, an integration with the Correlation Query enabled gets a warning instead of query alerts.
func WithAlertCompiler(c core.AlertCompiler) Option { return func(e *Engine) { e.compile = c } }

// New returns an engine.
func New(store core.Store, sources core.SourceFactory, opts ...Option) *Engine {
	e := &Engine{store: store, sources: sources, clock: clock.Real{}, log: slog.New(slog.DiscardHandler), retries: 6,
		leasePoll: DefaultLeasePoll}
	for _, o := range opts {
		o(e)
	}
	if e.leasePoll <= 0 {
		e.leasePoll = DefaultLeasePoll
	}
	return e
}

// Sources returns the engine's CloudTrail sources.
func (e *Engine) Sources() core.SourceFactory { return e.sources }

// Clock returns the engine's clock.
func (e *Engine) Clock() clock.Clock { return e.clock }

// CreateRun stores a new run of action a under an integration. A repeated request with the same
// run ID returns the stored run instead of creating a second one.
func (e *Engine) CreateRun(ctx context.Context, integrationID string, a *core.Action, runID string) (*core.Run, error) {
	in, err := e.store.GetIntegration(ctx, integrationID)
	if err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	if runID == "" {
		runID = uuid.NewString()
	}
	cor := core.NewCorrelator(in, a)
	notes, err := e.checkHistory(in, cor.Window())
	if err != nil {
		return nil, err
	}
	r := &core.Run{
		RunID: runID, JobID: a.JobID, ActionID: a.ActionID, IntegrationID: in.ID, Integration: in.Name,
		Action: *a, StartedAt: e.clock.Now(), Status: core.StatusWaiting, Window: cor.Window(),
		Events: []core.Event{}, Alerts: []core.Event{}, Suspicious: []core.Event{}, Warnings: []string{},
	}
	r.Progress.Notes = notes
	r.Warnings = composeWarnings(r, nil)
	r.SettleVerdict()
	for _, s := range a.ExpectedEvents {
		r.Expected = append(r.Expected, core.ExpectedCount{Event: s})
	}
	if err := e.store.CreateRun(ctx, r); err != nil {
		if core.ErrorCode(err) == core.ECONFLICT {
			return e.store.GetRun(ctx, runID)
		}
		return nil, fmt.Errorf("create run %s: %w", runID, err)
	}
	return r, nil
}

// load returns the run and its integration.
func (e *Engine) load(ctx context.Context, runID string) (*core.Run, *core.Integration, error) {
	r, err := e.store.GetRun(ctx, runID)
	if err != nil {
		return nil, nil, fmt.Errorf("load run %s: %w", runID, err)
	}
	in, err := e.store.GetIntegration(ctx, r.IntegrationID)
	if err != nil {
		return nil, nil, fmt.Errorf("load integration %s of run %s: %w", r.IntegrationID, runID, err)
	}
	return r, in, nil
}

func stateOf(r *core.Run) State {
	return State{
		RunID: r.RunID, Iteration: r.Queries, Status: r.Status, Done: core.Ended(r.Status),
		Events: len(r.Events), RawEvents: r.Progress.RawEvents, APICalls: r.APICalls,
	}
}

// seconds rounds a wait up to whole seconds (Step Functions' Wait takes whole seconds).
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// Begin starts a run: it says how long to wait until the first query (delayTime after the
// action's start).
func (e *Engine) Begin(ctx context.Context, in State) (out State, err error) {
	defer func() { e.observe(StepBegin, in, out, err) }()
	r, integ, err := e.load(ctx, in.RunID)
	if err != nil {
		return in, err
	}
	out = stateOf(r)
	if out.Done {
		return out, nil
	}
	first := r.Action.StartTime.Add(integ.DelayTimeD())
	now := e.clock.Now()
	out.WaitSeconds = seconds(first.Sub(now))
	if r.Progress.NextQueryAt.IsZero() {
		r.Progress.NextQueryAt = first
		if err := e.store.UpdateRun(ctx, r); err != nil {
			return in, fmt.Errorf("begin run %s: %w", r.RunID, err)
		}
	}
	e.log.InfoContext(ctx, "run begins", "runId", r.RunID, "firstQueryAt", first, "waitSeconds", out.WaitSeconds)
	return out, nil
}

func (e *Engine) observe(step string, in, out State, err error) {
	if e.observer != nil && err == nil {
		e.observer(step, in, out)
	}
}

func cursorFor(p *core.Progress, region, category string) *core.Cursor {
	for i := range p.Cursors {
		if p.Cursors[i].Region == region && p.Cursors[i].Category == category {
			return &p.Cursors[i]
		}
	}
	p.Cursors = append(p.Cursors, core.Cursor{Region: region, Category: category})
	return &p.Cursors[len(p.Cursors)-1]
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Fetch runs one query of the loop: for each region to read, it reads the part of the run's
// unsettled span that no run of the integration has read recently enough (the stream ledger,
// shared.go), stores the events (de-duplicated by EventId) and moves the cursors. A fetch repeated with the same input (a Step Functions retry after a timeout) is
// recognised and not applied twice.
func (e *Engine) Fetch(ctx context.Context, in State) (out State, err error) {
	defer func() { e.observe(StepFetch, in, out, err) }()
	ctx = e.withStop(ctx)
	r, integ, err := e.load(ctx, in.RunID)
	if err != nil {
		return in, err
	}
	if core.Ended(r.Status) || r.Progress.Final {
		return stateOf(r), nil // nothing left to read; a final run goes on to its last alerts pass
	}
	key := fmt.Sprintf("%s#%d", StepFetch, in.Iteration+1)
	if r.Progress.LastStepKey == key || r.Queries > in.Iteration {
		return stateOf(r), nil // already applied
	}
	src, err := e.sources.Source(ctx, integ)
	if err != nil {
		return in, classify(fmt.Errorf("fetch run %s: %w", r.RunID, err))
	}
	cor := core.NewCorrelator(integ, &r.Action)
	read := cor.ReadRange()
	now := e.clock.Now()
	var fetchErr error
	due := readDue(integ, r, now)
	if e.push {
		e.learnAccount(ctx, src, integ, r)
	}
	fetchErr = e.keepNeeds(ctx, r, integ, cor, read, now, due)
	for _, region := range integ.QueryRegions(&r.Action) {
		if !due || fetchErr != nil {
			break // not yet: see the read schedule (schedule.go)
		}
		if fetchErr = e.readRun(ctx, src, r, integ, region, core.CategoryManagement, cor.LookupAttribute(), read, now); fetchErr != nil {
			break
		}
	}
	if fetchErr != nil {
		// Keep the calls and events already counted; the step is retried or the run fails.
		if uerr := e.store.UpdateRun(ctx, r); uerr != nil {
			e.log.WarnContext(ctx, "cannot record a failed fetch", "runId", r.RunID, "error", uerr)
		}
		return in, classify(fetchErr)
	}
	if due {
		r.Progress.ReadDueAt = nextRead(integ, r, now)
		r.Progress.PolledAt = now
	}
	r.Queries++
	r.Status = core.StatusQuerying
	r.Progress.LastQueryAt = now
	r.Progress.LastStepKey = key
	if err := e.store.UpdateRun(ctx, r); err != nil {
		return in, classify(fmt.Errorf("fetch run %s: %w", r.RunID, err))
	}
	out = stateOf(r)
	e.log.InfoContext(ctx, "query done", "runId", r.RunID, "query", r.Queries, "apiCalls", r.APICalls)
	return out, nil
}

// Deadline is when a run's last query is due: the end of what it reads plus the settle time,
// rounded up to a whole query interval (on a grid fixed in time, the same for every run). That
// last read must come after the top of the run's span is settleTime old, so no earlier read can
// stand in for it; on the grid, the runs of one integration whose windows end within the same
// interval make that read once, together (toRead), instead of one query each for the few seconds
// their windows differ. It is at most one query interval later.
func Deadline(integ *core.Integration, r *core.Run) time.Time {
	t := core.NewCorrelator(integ, &r.Action).ReadRange().To.Add(integ.SettleTimeD())
	step := integ.QueryIntervalD()
	if step <= 0 {
		return t
	}
	if d := t.Truncate(step); d.Before(t) {
		return d.Add(step)
	}
	return t
}

// Alerts is the alerts step, due every correlationQueryInterval and once more when the correlate
// step found the verdict final: it reads the Insights events over the window and evaluates the
// Correlation Query over the matched events; their hits that concern the action are the run's
// alerts. After the final pass it completes the run and says done.
func (e *Engine) Alerts(ctx context.Context, in State) (out State, err error) {
	defer func() { e.observe(StepAlerts, in, out, err) }()
	ctx = e.withStop(ctx)
	r, integ, err := e.load(ctx, in.RunID)
	if err != nil {
		return in, err
	}
	if core.Ended(r.Status) {
		return stateOf(r), nil
	}
	key := fmt.Sprintf("%s#%d", StepAlerts, in.Iteration)
	now := e.clock.Now()
	if r.Progress.LastStepKey != key {
		cor := core.NewCorrelator(integ, &r.Action)
		if err := e.alertsPass(ctx, r, integ, cor, now); err != nil {
			if uerr := e.store.UpdateRun(ctx, r); uerr != nil {
				e.log.WarnContext(ctx, "cannot record a failed alerts pass", "runId", r.RunID, "error", uerr.Error())
			}
			return in, classify(fmt.Errorf("alerts run %s: %w", r.RunID, err))
		}
		r.Warnings = composeWarnings(r, nil)
		if r.Progress.Final {
			r.Status, r.CompletedAt = core.StatusCompleted, &now
		}
		r.SettleVerdict()
		r.Progress.LastStepKey = key
		if err := e.store.UpdateRun(ctx, r); err != nil {
			return in, classify(fmt.Errorf("alerts run %s: %w", r.RunID, err))
		}
	}
	out = stateOf(r)
	if !out.Done {
		out.WaitSeconds = seconds(r.Progress.NextQueryAt.Sub(now))
	}
	return out, nil
}

// alertsPass reads the Insights events of the window and recomputes the alerts.
func (e *Engine) alertsPass(ctx context.Context, r *core.Run, integ *core.Integration, cor *core.Correlator, now time.Time) error {
	src, err := e.sources.Source(ctx, integ)
	if err != nil {
		return err
	}
	read := cor.ReadRange()
	// CloudTrail delivers Insights events well after the calls they are about (it needs minutes of
	// activity to see a change of rate): they are read once, by the final pass, which reads what
	// is unread or unsettled of the window (schedule.go). Earlier passes evaluate the Correlation
	// Query over what is stored, with no call.
	if r.Progress.Final {
		if err := e.readRun(ctx, src, r, integ, integ.AWSRegion, core.CategoryInsight, nil, read, now); err != nil {
			return err
		}
	}
	insights, err := e.insights(ctx, r, integ, read)
	if err != nil {
		return err
	}
	var rule core.AlertRule
	r.Progress.AlertWarnings = nil
	if integ.CorrelationQueryEnabled {
		if e.compile == nil {
			r.Progress.AlertWarnings = append(r.Progress.AlertWarnings, "the Correlation Query is enabled but this binary cannot evaluate it")
		} else if rule, err = e.compile(integ.CorrelationQuery); err != nil {
			// Settings are validated when saved; this only happens to settings saved by an
			// older version with a query it no longer accepts.
			r.Progress.AlertWarnings = append(r.Progress.AlertWarnings, "the Correlation Query does not compile: "+core.ErrorMessage(err))
			rule = nil
		}
	}
	res := cor.Alerts(r.Events, insights, rule)
	r.Alerts = res.Alerts
	r.MarkAlerted(res.Alerted)
	r.Truncated = r.Truncated || res.Truncated
	r.Progress.AlertWarnings = append(r.Progress.AlertWarnings, res.Warnings...)
	r.Progress.NextAlertsAt = now.Add(integ.CorrelationQueryIntervalD())
	return nil
}

// composeWarnings rebuilds a run's warnings from what each kind of step found.
func composeWarnings(r *core.Run, correlate []string) []string {
	if correlate == nil {
		// Keep the correlate step's own warnings: those not from fetch or alerts.
		for _, w := range r.Warnings {
			if !slices.Contains(r.Progress.FetchWarnings, w) && !slices.Contains(r.Progress.AlertWarnings, w) && !slices.Contains(r.Progress.Notes, w) {
				correlate = append(correlate, w)
			}
		}
	}
	out := append(slices.Clone(r.Progress.Notes), r.Progress.FetchWarnings...)
	out = append(out, correlate...)
	for _, w := range r.Progress.AlertWarnings {
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// Fail records a run as failed with the reason Step Functions (or Execute) caught: the error's
// name (ErrorName) and its message, which the run's error field shows as "name: message".
func (e *Engine) Fail(ctx context.Context, runID, name, message string) (out State, err error) {
	r, err := e.store.GetRun(ctx, runID)
	if err != nil {
		return State{RunID: runID}, fmt.Errorf("fail run %s: %w", runID, err)
	}
	if core.Ended(r.Status) {
		return stateOf(r), nil
	}
	now := e.clock.Now()
	r.Status, r.CompletedAt = core.StatusFailed, &now
	r.SettleVerdict()
	if r.Error = name; message != "" {
		r.Error += ": " + message
	}
	if err := e.store.UpdateRun(ctx, r); err != nil {
		return State{RunID: runID}, fmt.Errorf("fail run %s: %w", runID, err)
	}
	out = stateOf(r)
	e.observe(StepFail, State{RunID: runID}, out, nil)
	return out, nil
}

// Cancel marks a run cancelled; the next step sees it and stops.
func (e *Engine) Cancel(ctx context.Context, runID string) (*core.Run, error) {
	for range 5 {
		r, err := e.store.GetRun(ctx, runID)
		if err != nil {
			return nil, fmt.Errorf("cancel run %s: %w", runID, err)
		}
		if core.Ended(r.Status) {
			return r, core.Errorf(core.EUNPROCESSABLE, "run %s has already ended (%s)", runID, r.Status)
		}
		now := e.clock.Now()
		r.Status, r.CompletedAt = core.StatusCancelled, &now
		r.SettleVerdict()
		err = e.store.UpdateRun(ctx, r)
		if err == nil {
			return r, nil
		}
		if core.ErrorCode(err) != core.ECONFLICT {
			return nil, fmt.Errorf("cancel run %s: %w", runID, err)
		}
	}
	return nil, core.Errorf(core.ECONFLICT, "run %s is changing too fast to cancel; try again", runID)
}
