package cloudtrail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trailproof/trailproof/internal/ratelimit"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/time/rate"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/errclass"
)

// Source reads CloudTrail for one integration. It is safe for concurrent use.
type Source struct {
	api     awsct.LookupEventsAPIClient
	caller  *sts.Client // sts:GetCallerIdentity with the integration's credentials (Account)
	account struct {
		mu    sync.Mutex
		asked bool
		id    string
		err   error
	}
	region  string // the integration's region, used when a query names none
	timeout time.Duration
	clk     clock.Clock
	log     *slog.Logger
	retry   retryPolicy
	limiter func(region string) *rate.Limiter
	// shared, when set, is the rate budget shared with other processes (a DynamoDB token
	// bucket); budgetKey names the bucket of a region.
	shared    ratelimit.Limiter
	budgetKey func(region string) string
	scrub     *strings.Replacer
	diag      errclass.Settings // what of the settings shapes an error's remedy
}

var _ core.Source = (*Source)(nil)

var lookupKeys = map[string]bool{
	core.AttrEventID: true, core.AttrEventName: true, core.AttrReadOnly: true, core.AttrUsername: true,
	core.AttrResourceType: true, core.AttrResourceName: true, core.AttrEventSource: true,
	core.AttrAccessKeyID: true,
}

// Lookup reads the events of q, newest first as CloudTrail lists them, page after page until the
// span is read, q.Budget events were read (then Truncated is set) or q.StopAt came (then Stopped
// is set); OldestRead then says how far back the read got. Each event appears once even if
// CloudTrail repeats it across pages. With q.Page each page goes there as it arrives instead of
// into the result's Events.
//
// On error the result still counts the calls made and holds the events read so far; the error is
// a *ThrottledError, *TransientError, *AuthError or *RequestError when CloudTrail could not be
// read, a *core.Error for a malformed query, q.Page's error, or the context's error.
func (s *Source) Lookup(ctx context.Context, q core.Query) (core.QueryResult, error) {
	var res core.QueryResult
	region := q.Region
	if region == "" {
		region = s.region
	}
	in, err := s.input(q)
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	var oldestRead time.Time
	readTo := func() time.Time {
		switch {
		case !oldestRead.IsZero():
			return oldestRead
		case !q.To.IsZero():
			return q.To
		}
		return s.clk.Now()
	}
	for {
		max := core.MaxEventsPerCall
		if q.Budget > 0 && q.Budget-res.Read < max {
			max = q.Budget - res.Read
		}
		in.MaxResults = aws.Int32(int32(max))
		out, err := s.call(ctx, region, in, &res, q.StopAt, earliest(q.StopAt, q.WaitUntil))
		if errors.Is(err, errStop) {
			res.Stopped, res.OldestRead = true, readTo()
			break
		}
		if err != nil {
			return res, err
		}
		var page []core.RawEvent
		for _, ev := range out.Events {
			raw := s.convert(ev, region, q.Category)
			if raw.EventID != "" {
				if seen[raw.EventID] {
					continue
				}
				seen[raw.EventID] = true
			}
			if oldestRead.IsZero() || (!raw.EventTime.IsZero() && raw.EventTime.Before(oldestRead)) {
				oldestRead = raw.EventTime
			}
			page = append(page, raw)
		}
		res.Read += len(page)
		if q.Page == nil {
			res.Events = append(res.Events, page...)
		} else if len(page) > 0 {
			if err := q.Page(ctx, page); err != nil {
				return res, err
			}
		}
		next := aws.ToString(out.NextToken)
		if next == "" {
			break
		}
		if q.Budget > 0 && res.Read >= q.Budget {
			res.Truncated, res.OldestRead = true, readTo()
			break
		}
		if next == aws.ToString(in.NextToken) {
			// Following it would loop for ever.
			return res, &RequestError{Region: region, Code: "RepeatedNextToken",
				Message: "CloudTrail returned the pagination token it was sent; the endpoint is misbehaving, check endpoint"}
		}
		in.NextToken = aws.String(next)
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "lookupEvents",
		slog.String("region", region), slog.String("category", q.Category),
		slog.Time("from", q.From), slog.Time("to", q.To),
		slog.Int("events", res.Read), slog.Int("calls", res.Calls),
		slog.Int("throttled", res.Throttled), slog.Bool("truncated", res.Truncated), slog.Bool("stopped", res.Stopped))
	return res, nil
}

// errStop says that the query's StopAt or WaitUntil came: no call may start or wait past it.
var errStop = errors.New("the step's time is up")

// earliest returns the earlier of two times, a zero time counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// pastStop reports whether waiting d from now would reach stopAt (zero: no stop).
func (s *Source) pastStop(stopAt time.Time, d time.Duration) bool {
	return !stopAt.IsZero() && !s.clk.Now().Add(d).Before(stopAt)
}

// input checks q and turns it into the first page's request.
func (s *Source) input(q core.Query) (*awsct.LookupEventsInput, error) {
	in := &awsct.LookupEventsInput{}
	switch q.Category {
	case core.CategoryManagement:
	case core.CategoryInsight:
		in.EventCategory = types.EventCategoryInsight
	default:
		return nil, core.FieldError("query.category", "must be empty (management events) or %q, not %q", core.CategoryInsight, q.Category)
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return nil, core.FieldError("query.from", "the start %s is after the end %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Budget < 0 {
		return nil, core.FieldError("query.budget", "must be 0 (no limit) or more, not %d", q.Budget)
	}
	if !q.From.IsZero() {
		in.StartTime = aws.Time(q.From)
	}
	if !q.To.IsZero() {
		in.EndTime = aws.Time(q.To)
	}
	if a := q.Attribute; a != nil {
		if !lookupKeys[a.Key] {
			return nil, core.FieldError("query.attribute.key", "%q is not a LookupEvents attribute (EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId)", a.Key)
		}
		in.LookupAttributes = []types.LookupAttribute{{
			AttributeKey: types.LookupAttributeKey(a.Key), AttributeValue: aws.String(a.Value),
		}}
	}
	return in, nil
}

// call makes one LookupEvents call, retrying throttling and transient faults with backoff on the
// clock; every attempt waits for the (identity, region) limiter first and counts in res.Calls.
// With stopAt set it cuts off a call still running then; with waitUntil set (at or before
// stopAt) it returns errStop rather than wait for a turn, or between retries, up to or past it.
func (s *Source) call(ctx context.Context, region string, in *awsct.LookupEventsInput, res *core.QueryResult, stopAt, waitUntil time.Time) (*awsct.LookupEventsOutput, error) {
	opts := []func(*awsct.Options){func(o *awsct.Options) { o.Region = region }}
	if tag := userAgentFrom(ctx); tag != "" {
		opts = append(opts, func(o *awsct.Options) { o.APIOptions = append(o.APIOptions, userAgentOptions(tag)...) })
	}
	for attempt := 1; ; attempt++ {
		if err := s.wait(ctx, region, waitUntil); err != nil {
			if errors.Is(err, errStop) {
				return nil, err
			}
			return nil, fmt.Errorf("lookup events in %s: wait for the rate limiter: %w", region, err)
		}
		timeout, cut := s.timeout, false
		if !stopAt.IsZero() {
			if left := stopAt.Sub(s.clk.Now()); left < timeout {
				timeout, cut = left, true
			}
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		out, err := s.api.LookupEvents(actx, in, opts...)
		cut = cut && actx.Err() != nil
		cancel()
		res.Calls++
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lookup events in %s: %w", region, ctx.Err())
		}
		if cut {
			return nil, errStop
		}
		k, dg := classify(err, s.diag)
		code, detail := dg.Code, dg.Detail
		if k == kindThrottled {
			res.Throttled++
		}
		if !k.retryable() || attempt >= s.retry.maxAttempts {
			return nil, s.typedError(k, region, dg, attempt, err)
		}
		d := s.retry.delay(attempt)
		if s.pastStop(waitUntil, d) {
			return nil, errStop // the next step retries it, from where this one got
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "lookupEvents retry",
			slog.String("region", region), slog.String("code", code),
			slog.String("error", s.scrub.Replace(detail)),
			slog.Int("attempt", attempt), slog.Duration("delay", d))
		if err := s.clk.Sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("lookup events in %s: %w", region, err)
		}
	}
}

// wait takes one call from the region's limiter, sleeping on the clock until it is due; with
// stopAt set, it returns errStop instead of waiting up to or past it.
func (s *Source) wait(ctx context.Context, region string, stopAt time.Time) error {
	if s.pastStop(stopAt, 0) {
		return errStop
	}
	lim := s.limiter(region)
	r := lim.ReserveN(s.clk.Now(), 1)
	if !r.OK() {
		return fmt.Errorf("rate limiter refuses calls (burst %d)", lim.Burst())
	}
	if d := r.DelayFrom(s.clk.Now()); d > 0 {
		if s.pastStop(stopAt, d) {
			r.CancelAt(s.clk.Now())
			return errStop
		}
		if err := s.clk.Sleep(ctx, d); err != nil {
			r.CancelAt(s.clk.Now())
			return err
		}
	}
	if s.shared == nil {
		return nil
	}
	// The in-process limiter paces this process; the shared budget keeps every process (every
	// concurrent Lambda) of the account and region under LookupEvents' limit together.
	err := ratelimit.Wait(ctx, s.shared, s.clk, s.budgetKey(region), stopAt)
	if errors.Is(err, ratelimit.ErrTooLate) {
		return errStop
	}
	return err
}

func (s *Source) typedError(k kind, region string, d errclass.Diagnosis, attempts int, err error) error {
	code := d.Code
	detail := s.scrub.Replace(strings.TrimSpace(d.Detail))
	if detail == "" {
		detail = "no message"
	}
	// The class leads the message, so a run's failure cause says whose side failed (DNS, TLS,
	// credentials, CloudTrail 5xx...) as the connectivity test does.
	detail = errclass.Label(d.Class) + ": " + detail
	todo := s.scrub.Replace(d.Remedy)
	switch k {
	case kindThrottled:
		return &ThrottledError{Region: region, Code: code, Attempts: attempts, Err: err,
			Message: fmt.Sprintf("still throttled after %d attempts (%s); %s", attempts, detail, todo)}
	case kindTransient:
		return &TransientError{Region: region, Code: code, Attempts: attempts, Err: err,
			Message: fmt.Sprintf("failed %d times, last with: %s; %s", attempts, detail, todo)}
	case kindAuth:
		return &AuthError{Region: region, Code: code, Err: err, Message: fmt.Sprintf("%s; %s", detail, todo)}
	default:
		return &RequestError{Region: region, Code: code, Err: err, Message: fmt.Sprintf("%s; %s", detail, todo), Class: d.Class}
	}
}

// recordKeys are the record fields convert falls back on when the envelope lacks them.
type recordKeys struct {
	EventID   string    `json:"eventID"`
	EventTime time.Time `json:"eventTime"`
}

// convert turns a LookupEvents event into a RawEvent. A CloudTrailEvent that is not JSON is kept
// as a JSON string (and logged), so that nothing read is lost and Record stays valid JSON.
func (s *Source) convert(ev types.Event, region, category string) core.RawEvent {
	raw := core.RawEvent{
		EventID:  aws.ToString(ev.EventId),
		Region:   region,
		Category: category,
	}
	if ev.EventTime != nil {
		raw.EventTime = ev.EventTime.UTC()
	}
	text := aws.ToString(ev.CloudTrailEvent)
	var buf bytes.Buffer
	switch {
	case strings.TrimSpace(text) == "":
		raw.Record = json.RawMessage(`{}`)
		s.log.Warn("lookupEvents event without CloudTrailEvent", slog.String("eventId", raw.EventID))
	case json.Compact(&buf, []byte(text)) != nil:
		b, _ := json.Marshal(text)
		raw.Record = b
		s.log.Warn("lookupEvents event whose CloudTrailEvent is not JSON; kept as a string", slog.String("eventId", raw.EventID))
	default:
		raw.Record = buf.Bytes()
		if raw.EventID == "" || raw.EventTime.IsZero() {
			var k recordKeys
			if json.Unmarshal(raw.Record, &k) == nil {
				if raw.EventID == "" {
					raw.EventID = k.EventID
				}
				if raw.EventTime.IsZero() {
					raw.EventTime = k.EventTime.UTC()
				}
			}
		}
	}
	// EventId and EventTime fall back on the record's, so that envelope paths always resolve.
	env := corpus.Envelope{
		EventID:     raw.EventID,
		EventName:   aws.ToString(ev.EventName),
		EventSource: aws.ToString(ev.EventSource),
		EventTime:   raw.EventTime,
		Username:    aws.ToString(ev.Username),
		AccessKeyID: aws.ToString(ev.AccessKeyId),
		ReadOnly:    aws.ToString(ev.ReadOnly),
	}
	for _, r := range ev.Resources {
		env.Resources = append(env.Resources, corpus.Resource{
			ResourceType: aws.ToString(r.ResourceType), ResourceName: aws.ToString(r.ResourceName),
		})
	}
	raw.Envelope = corpus.MarshalEnvelope(env)
	return raw
}

// retryPolicy is exponential backoff with jitter.
type retryPolicy struct {
	maxAttempts int
	base, max   time.Duration
}

// delay is the wait after the attempt-th failed attempt: base x 2^(attempt-1), capped at max, of
// which a random half is taken off so that runs throttled together do not retry together.
func (p retryPolicy) delay(attempt int) time.Duration {
	d := p.base
	for i := 1; i < attempt && d < p.max; i++ {
		d *= 2
	}
	if p.max > 0 && d > p.max {
		d = p.max
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
