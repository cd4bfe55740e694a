// Package alerts implements the Correlation Query: a CEL expression evaluated over each event's
// CloudTrail record and its normalized form, whose hits are the run's alerts.
//
// Two variables are declared:
//
//   - record: the raw CloudTrail record as map(string, dyn), exactly as CloudTrail wrote it
//     (record.eventName, record.userIdentity.arn, record.requestParameters.userName ...).
//   - event: the normalized event as map(string, dyn) with the snake_case keys of core.Event's
//     JSON (event_id, event_time as a timestamp, computer, hosts as a list, src_ip, dest_ip, user,
//     description, event_name, event_source, region, account_id, user_agent, error_code,
//     access_key_id, sensor_uuid, vendor, product). Every key is always present: a field the
//     field map found nothing for is "" (hosts is []), so event.error_code == "" is the test for
//     success.
//
// CloudTrail records leave fields out rather than set them to null, so a query should test a
// field with has() before reading it: has(record.errorCode), has(record.requestParameters.userName)
// (has() on a field of a null object is false). The optional syntax works too:
// record.?requestParameters.?userName.orValue("") == "bob". As a safety net, a read of a missing
// map key or list index at evaluation time makes the event a non-match rather than an error,
// which is what a detection author means by "the field is not there".
//
// Besides the standard library, queries can use the strings extension (lowerAscii, upperAscii,
// indexOf, split, replace, trim, join ...), which Sigma-style rules need because Sigma matches
// strings case-insensitively, and the sets extension (sets.contains, sets.intersects).
//
// Every query is parsed, type-checked (it must be a bool) and costed when it is compiled, so that
// a bad or too costly one is refused when the settings are saved, never when a run evaluates it.
package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/trailproof/trailproof/internal/core"
)

// Limits applied to every query.
const (
	// DefaultCostLimit bounds a query's worst-case cost, in CEL cost units (about one per
	// operation, one per ten characters scanned). Measured here at 15-30 ns a unit, it allows about
	// 20 ms for one event in the worst case the estimate assumes; real records cost a few hundred
	// units. It admits a comprehension over a record list with a test such as contains or
	// matches("(?i)...") on each element (lowerAscii copies each element, which puts
	// lowerAscii().contains just over it) and refuses a comprehension nested in another (4
	// million units and up).
	DefaultCostLimit uint64 = 1_000_000
	// MaxExprLen is the longest query accepted, in bytes: detections are short, and the limit
	// bounds the parser's work on hostile input.
	MaxExprLen = 4096
	// MaxValueSize is the size the cost estimate assumes for any list, map or string read from
	// record or event: its elements or characters. Both variables are maps of dyn, so the
	// estimator cannot tell a list from a string and one bound serves for both. Real CloudTrail
	// values are far smaller; the runtime cost limit guards the rare record that is not.
	MaxValueSize = 1000
)

// field is the settings field every compile error names.
const field = "correlationQuery"

// Option tunes Compile.
type Option func(*config)

type config struct {
	costLimit uint64
}

// WithCostLimit sets the bound on the query's estimated worst-case cost (checked at compile time)
// and on its actual cost per event (checked while evaluating). 0 keeps DefaultCostLimit.
func WithCostLimit(limit uint64) Option {
	return func(c *config) {
		if limit > 0 {
			c.costLimit = limit
		}
	}
}

// Query is a compiled Correlation Query. It implements core.AlertRule and is safe for concurrent
// use: a cel.Program keeps no state between evaluations.
type Query struct {
	expr     string
	prg      cel.Program
	estimate uint64
}

var _ core.AlertRule = (*Query)(nil)

var (
	envOnce sync.Once
	baseEnv *cel.Env
	envErr  error
)

// environment builds the CEL environment once: building it costs far more than compiling a query.
func environment() (*cel.Env, error) {
	envOnce.Do(func() {
		baseEnv, envErr = cel.NewEnv(
			cel.Variable("record", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
			ext.Strings(),
			ext.Sets(),
			cel.OptionalTypes(),
			// Literal regexes, timestamps and durations are checked at compile time, so a typo in
			// one is refused when the settings are saved.
			cel.ASTValidators(
				cel.ValidateRegexLiterals(),
				cel.ValidateTimestampLiterals(),
				cel.ValidateDurationLiterals(),
			),
		)
	})
	return baseEnv, envErr
}

// Compile parses, type-checks and costs a Correlation Query. Any problem is a *core.Error with
// code EINVALID and field "correlationQuery" whose message says where (line:column) and what.
func Compile(expr string, opts ...Option) (*Query, error) {
	cfg := config{costLimit: DefaultCostLimit}
	for _, o := range opts {
		o(&cfg)
	}
	if strings.TrimSpace(expr) == "" {
		return nil, core.FieldError(field, "is empty: write a CEL expression over record and event, e.g. record.eventName == \"StopLogging\"")
	}
	if len(expr) > MaxExprLen {
		return nil, core.FieldError(field, "is too long: %d bytes, limit %d", len(expr), MaxExprLen)
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("build the CEL environment: %w", err)
	}
	parsed, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, issuesError("syntax error", iss)
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, issuesError("type error", iss)
	}
	if out := checked.OutputType(); !out.IsExactType(cel.BoolType) {
		if out.IsExactType(cel.DynType) {
			// A bare field (record.readOnly) is dyn: it may hold a bool in one record and
			// nothing in the next, so the query must say what it expects.
			return nil, core.FieldError(field, "must be a condition (bool), but it evaluates to dyn: compare the value, e.g. record.readOnly == true")
		}
		return nil, core.FieldError(field, "must be a condition (bool), but it evaluates to %s", out)
	}
	est, err := env.EstimateCost(checked, boundedInputs{})
	if err != nil {
		return nil, core.FieldError(field, "cannot estimate its cost: %v", err)
	}
	if est.Max > cfg.costLimit {
		return nil, core.FieldError(field,
			"is too costly: estimated cost up to %s, limit %d (assuming lists and strings in record and event of up to %d elements or characters); do less per element of a record list: no comprehension (all, exists, exists_one, filter, map) or 'in' over a record list inside another, and matches(\"(?i)...\") rather than lowerAscii() on each element",
			costString(est.Max), cfg.costLimit, MaxValueSize)
	}
	prg, err := env.Program(checked,
		cel.CostLimit(cfg.costLimit),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, core.FieldError(field, "cannot be prepared for evaluation: %v", err)
	}
	return &Query{expr: expr, prg: prg, estimate: est.Max}, nil
}

// costString renders an estimate, naming the unbounded case instead of printing 2^64-1.
func costString(c uint64) string {
	if c == ^uint64(0) {
		return "unbounded"
	}
	return fmt.Sprint(c)
}

// issuesError turns CEL's issues into one field error: "syntax error at 1:9: <CEL's message>".
// Only the first issue is spelled out, with a count of the others: after a syntax error the
// parser's further complaints are mostly echoes of the first. Columns are 1-based, as an editor
// shows them.
func issuesError(kind string, iss *cel.Issues) *core.Error {
	errs := iss.Errors()
	var msg string
	if len(errs) == 0 {
		msg = kind + ": " + iss.Err().Error()
	} else {
		e := errs[0]
		msg = fmt.Sprintf("%s at %d:%d: %s", kind, e.Location.Line(), e.Location.Column()+1, e.Message)
		if n := len(errs) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
	}
	ce := core.FieldError(field, "%s", msg)
	ce.Err = iss.Err()
	return ce
}

// Name identifies the rule in the alerts it raises.
func (q *Query) Name() string { return core.AlertSourceQuery }

// Expr returns the query's source text.
func (q *Query) Expr() string { return q.expr }

// EstimatedCost returns the worst-case cost the compiler estimated for one event.
func (q *Query) EstimatedCost() uint64 { return q.estimate }

// Match evaluates the query over one event. A query that reads a key or list index the record
// does not have is a non-match, not an error; any other evaluation failure (a type mismatch, the
// runtime cost limit, a record that is not a JSON object) is returned.
func (q *Query) Match(record json.RawMessage, ev *core.Event) (bool, error) {
	act := &activation{raw: record, ev: ev}
	out, _, err := q.prg.Eval(act)
	if act.err != nil {
		return false, act.err
	}
	if err != nil {
		if isMissing(err) {
			return false, nil
		}
		return false, fmt.Errorf("evaluate the correlation query: %w", err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluate the correlation query: result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// isMissing says whether an evaluation error is a read of an absent map key or list index: in a
// JSON record that means the field is not there, which never satisfies a detection.
func isMissing(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "no such key: ") || strings.HasPrefix(msg, "index out of bounds: ")
}

// activation resolves record and event on first use, so a query that rejects an event on its
// name never pays for decoding the record.
type activation struct {
	raw json.RawMessage
	ev  *core.Event

	record, event any
	decoded       bool
	built         bool
	err           error
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "record":
		if !a.decoded {
			a.decoded = true
			a.record, a.err = decodeRecord(a.raw)
			if a.err != nil {
				// The error is reported by Match; CEL sees an error value so that it stops here.
				return types.WrapErr(a.err), true
			}
		}
		return a.record, true
	case "event":
		if !a.built {
			a.built = true
			a.event = eventMap(a.ev)
		}
		return a.event, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

var errNotObject = errors.New("the CloudTrail record is not a JSON object")

// decodeRecord decodes a record into the map CEL reads. An absent record is an empty map (every
// field missing), so rules about the normalized event still work on it.
func decodeRecord(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, errNotObject
		}
		return nil, fmt.Errorf("decode the CloudTrail record: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// eventMap is the normalized event as the query sees it: every key present, hosts a list.
func eventMap(ev *core.Event) ref.Val {
	if ev == nil {
		ev = &core.Event{}
	}
	hosts := ev.Hosts
	if hosts == nil {
		hosts = []string{}
	}
	m := map[string]any{
		"event_id":      ev.EventID,
		"event_time":    ev.EventTime.UTC(),
		"computer":      ev.Computer,
		"hosts":         hosts,
		"src_ip":        ev.SrcIP,
		"dest_ip":       ev.DestIP,
		"user":          ev.User,
		"description":   ev.Description,
		"event_name":    ev.EventName,
		"event_source":  ev.EventSource,
		"region":        ev.Region,
		"account_id":    ev.AccountID,
		"user_agent":    ev.UserAgent,
		"error_code":    ev.ErrorCode,
		"access_key_id": ev.AccessKeyID,
		"sensor_uuid":   ev.SensorUUID,
		"vendor":        ev.Vendor,
		"product":       ev.Product,
	}
	return types.DefaultTypeAdapter.NativeToValue(m)
}

// Validate compiles a query with the default limits and returns why it is refused, or nil. Its
// error names no field, because core.ParseIntegration, which calls it, names the field itself.
func Validate(expr string) error {
	_, err := Compile(expr)
	var ce *core.Error
	if errors.As(err, &ce) && ce.Field == field {
		cp := *ce
		cp.Field = ""
		return &cp
	}
	return err
}

// Compiler returns Compile as a core.AlertCompiler, for the workflow engine.
func Compiler() core.AlertCompiler {
	return func(expr string) (core.AlertRule, error) {
		q, err := Compile(expr)
		if err != nil {
			return nil, err
		}
		return q, nil
	}
}

// Importing this package is what makes ParseIntegration refuse a bad query at save time.
func init() {
	core.ValidateCorrelationQuery = Validate
}
