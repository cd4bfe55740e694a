package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// parse validates a request as LookupEvents does.
func (e *Emulator) parse(body []byte, region string) (query, *apiError) {
	var req lookupRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return query{}, badRequest(CodeSerialization, "cannot parse request: %v", err)
		}
	}
	q := query{max: MaxResultsLimit, category: req.EventCategory, region: region}
	if req.MaxResults != nil {
		if *req.MaxResults < 1 || *req.MaxResults > MaxResultsLimit {
			return query{}, badRequest(CodeInvalidMaxResults, "MaxResults must be between 1 and %d, got %d", MaxResultsLimit, *req.MaxResults)
		}
		q.max = *req.MaxResults
	}
	switch len(req.LookupAttributes) {
	case 0:
	case 1:
		a := req.LookupAttributes[0]
		if !slices.Contains(lookupAttributeKeys, a.AttributeKey) {
			return query{}, badRequest(CodeInvalidLookupAttrs, "unknown lookup attribute key %q; valid keys are %s", a.AttributeKey, strings.Join(lookupAttributeKeys, ", "))
		}
		if a.AttributeValue == nil || *a.AttributeValue == "" || len(*a.AttributeValue) > 2000 {
			return query{}, badRequest(CodeInvalidLookupAttrs, "lookup attribute %s needs a value of 1 to 2000 characters", a.AttributeKey)
		}
		q.attr = &core.LookupAttribute{Key: a.AttributeKey, Value: *a.AttributeValue}
	default:
		return query{}, badRequest(CodeInvalidLookupAttrs, "only one lookup attribute is allowed per call, got %d", len(req.LookupAttributes))
	}
	switch req.EventCategory {
	case "", core.CategoryInsight:
	default:
		return query{}, badRequest(CodeInvalidEventCategory, "EventCategory must be %q, got %q", core.CategoryInsight, req.EventCategory)
	}
	toTime := func(name string, f *float64) (*time.Time, *apiError) {
		if f == nil {
			return nil, nil
		}
		if math.IsNaN(*f) || math.IsInf(*f, 0) || *f < 0 || *f > 253402300799 {
			return nil, badRequest(CodeInvalidTimeRange, "%s is not a valid time: %v", name, *f)
		}
		t := time.UnixMilli(int64(math.Round(*f * 1000))).UTC()
		return &t, nil
	}
	var aerr *apiError
	if q.start, aerr = toTime("StartTime", req.StartTime); aerr != nil {
		return query{}, aerr
	}
	if q.end, aerr = toTime("EndTime", req.EndTime); aerr != nil {
		return query{}, aerr
	}
	if q.start != nil && q.end != nil && q.start.After(*q.end) {
		return query{}, badRequest(CodeInvalidTimeRange, "StartTime %s is after EndTime %s", q.start.Format(time.RFC3339), q.end.Format(time.RFC3339))
	}
	if req.NextToken != nil && *req.NextToken != "" {
		tok, err := e.openToken(*req.NextToken, q.fingerprint())
		if err != nil {
			return query{}, badRequest(CodeInvalidNextToken, "%v", err)
		}
		q.token = &tok
	}
	return q, nil
}

// fingerprint identifies the query a NextToken belongs to: everything but the page size and the
// token itself.
func (q query) fingerprint() string {
	var b strings.Builder
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	fmt.Fprintf(&b, "%s|%s|%s|%s", ts(q.start), ts(q.end), q.category, q.region)
	if q.attr != nil {
		fmt.Fprintf(&b, "|%s=%s", q.attr.Key, q.attr.Value)
	}
	return b.String()
}
