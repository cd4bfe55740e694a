package cloudtrail

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/trailproof/trailproof/internal/ratelimit"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"golang.org/x/time/rate"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/errclass"
)

// Source reads CloudTrail for one integration. It is safe for concurrent use.
type Source struct {
	api     awsct.LookupEventsAPIClient
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
// span is read or q.Budget events were read (then Truncated is set and OldestRead says how far
// back the read got). Each event appears once even if CloudTrail repeats it across pages.
//
// On error the result still counts the calls made and holds the events read so far; the error is
// a *ThrottledError, *TransientError, *AuthError or *RequestError when CloudTrail could not be
// read, a *core.Error for a malformed query, or the context's error.
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
	for {
		max := core.MaxEventsPerCall
		if q.Budget > 0 && q.Budget-len(res.Events) < max {
			max = q.Budget - len(res.Events)
		}
		in.MaxResults = aws.Int32(int32(max))
		out, err := s.call(ctx, region, in, &res)
		if err != nil {
			return res, err
		}
		for _, ev := range out.Events {
			raw := s.convert(ev, region, q.Category)
			if raw.EventID != "" {
				if seen[raw.EventID] {
					continue
				}
				seen[raw.EventID] = true
			}
			res.Events = append(res.Events, raw)
		}
		next := aws.ToString(out.NextToken)
		if next == "" {
			break
		}
		if q.Budget > 0 && len(res.Events) >= q.Budget {
			res.Truncated = true
			res.OldestRead = oldest(res.Events)
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
		slog.Int("events", len(res.Events)), slog.Int("calls", res.Calls),
		slog.Int("throttled", res.Throttled), slog.Bool("truncated", res.Truncated))
	return res, nil
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
func (s *Source) call(ctx context.Context, region string, in *awsct.LookupEventsInput, res *core.QueryResult) (*awsct.LookupEventsOutput, error) {
	opts := []func(*awsct.Options){func(o *awsct.Options) { o.Region = region }}
	if tag := userAgentFrom(ctx); tag != "" {
		opts = append(opts, func(o *awsct.Options) { o.APIOptions = append(o.APIOptions, userAgentOptions(tag)...) })
	}
	for attempt := 1; ; attempt++ {
		if err := s.wait(ctx, region); err != nil {
			return nil, fmt.Errorf("lookup events in %s: wait for the rate limiter: %w", region, err)
		}
		actx, cancel := context.WithTimeout(ctx, s.timeout)
		out, err := s.api.LookupEvents(actx, in, opts...)
		cancel()
		res.Calls++
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lookup events in %s: %w", region, ctx.Err())
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
		s.log.LogAttrs(ctx, slog.LevelWarn, "lookupEvents retry",
			slog.String("region", region), slog.String("code", code),
			slog.String("error", s.scrub.Replace(detail)),
			slog.Int("attempt", attempt), slog.Duration("delay", d))
		if err := s.clk.Sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("lookup events in %s: %w", region, err)
		}
	}
}

// wait takes one call from the region's limiter, sleeping on the clock until it is due.
func (s *Source) wait(ctx context.Context, region string) error {
	lim := s.limiter(region)
	r := lim.ReserveN(s.clk.Now(), 1)
	if !r.OK() {
		return fmt.Errorf("rate limiter refuses calls (burst %d)", lim.Burst())
	}
	if d := r.DelayFrom(s.clk.Now()); d > 0 {
		if err := s.clk.Sleep(ctx, d); err != nil {
			r.CancelAt(s.clk.Now())
			return err
		}
	}
	if s.shared != nil {
		// The in-process limiter paces this process; the shared budget keeps every process
		// (every concurrent Lambda) of the account and region under LookupEvents' limit together.
		return ratelimit.Wait(ctx, s.shared, s.clk, s.budgetKey(region))
	}
	return nil
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
		return &RequestError{Region: region, Code: code, Err: err, Message: fmt.Sprintf("%s; %s", detail, todo)}
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

func oldest(evs []core.RawEvent) time.Time {
	var t time.Time
	for _, e := range evs {
		if t.IsZero() || (!e.EventTime.IsZero() && e.EventTime.Before(t)) {
			t = e.EventTime
		}
	}
	return t
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
