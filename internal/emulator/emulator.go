// Package emulator is a stand-in for AWS CloudTrail's LookupEvents API, serving a corpus of recorded
// CloudTrail records over HTTP with the real wire protocol (AWS JSON 1.1), limits, error shapes,
// paging and ordering, plus what the real service does to its clients over time: delivery delay,
// throttling, and injected faults. Nothing else emulates LookupEvents, and trailproof's source,
// workflow and CLI need something real to talk to without an AWS account.
package emulator

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"golang.org/x/time/rate"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/redact"
)

// Limits and defaults of LookupEvents, as AWS documents them.
const (
	// MaxResultsLimit is the most events one call returns, and the default page size.
	MaxResultsLimit = 50
	// DefaultRate is LookupEvents' budget: 2 calls per second per account and region.
	DefaultRate = 2.0
	// DefaultDeliveryDelay is the typical time from an API call to its event being searchable;
	// the CLI's default. The emulator's own default is 0, so records are visible at once.
	DefaultDeliveryDelay = 5 * time.Minute
	// Target is the X-Amz-Target suffix of the one operation served. The SDK sends
	// "CloudTrail_20131101.LookupEvents"; the full Smithy name ends the same way.
	Target = ".LookupEvents"
)

// Error codes the emulator answers with (the __type of a JSON 1.1 error body).
const (
	CodeInvalidMaxResults          = "InvalidMaxResultsException"
	CodeInvalidLookupAttrs         = "InvalidLookupAttributesException"
	CodeInvalidTimeRange           = "InvalidTimeRangeException"
	CodeInvalidNextToken           = "InvalidNextTokenException"
	CodeInvalidEventCategory       = "InvalidEventCategoryException"
	CodeThrottling                 = "ThrottlingException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeMissingAuthToken           = "MissingAuthenticationTokenException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeAccessDenied               = "AccessDeniedException"
	CodeInternalFailure            = "InternalFailure"
	CodeSerialization              = "SerializationException"
	CodeUnknownOperation           = "UnknownOperationException"
	contentTypeJSON11              = "application/x-amz-json-1.1"
	maxRequestBody           int64 = 1 << 20
)

// lookupAttributeKeys are the keys LookupEvents accepts, one per call.
var lookupAttributeKeys = []string{
	core.AttrEventID, core.AttrEventName, core.AttrReadOnly, core.AttrUsername,
	core.AttrResourceType, core.AttrResourceName, core.AttrEventSource, core.AttrAccessKeyID,
}

// Emulator serves LookupEvents over a set of records. It is an http.Handler, safe for concurrent
// use; make one with New.
type Emulator struct {
	clk          clock.Clock
	delay        Delays
	limit        rate.Limit
	burst        int
	faults       Faults
	keys         map[string]Key // nil: any key is accepted
	verify       Verifier
	verifySet    bool // WithVerifier was given (nil turns the default SigV4 check off)
	regionFilter bool
	history      time.Duration
	unsigned     bool
	log          *slog.Logger
	tokenKey     []byte

	mu       sync.Mutex
	rng      *mrand.Rand
	entries  []entry // newest first; ties by EventID
	ids      map[string]bool
	limiters map[KeyRegion]*rate.Limiter
	recent   map[KeyRegion][]time.Time // call times in the last second, for MaxPerSecond
	stats    Stats                     // PerKey unused: see perKey
	perKey   map[KeyRegion]*KeyStats
	requests uint64
	// anyRegion holds the records with a non-AWS awsRegion served so far (see ServedAnyRegion).
	anyRegion map[string]bool
}

// entry is a record prepared for serving: its envelope resolved once, its region and category
// read once.
type entry struct {
	id       string
	at       time.Time
	visible  time.Time // at plus the record's delivery delay
	env      corpus.Envelope
	record   string // CloudTrailEvent
	region   string
	category string
}

// New returns an emulator serving events (typically from corpus.Load). Events with the same
// EventID are served once.
func New(events []core.RawEvent, opts ...Option) (*Emulator, error) {
	e := &Emulator{
		clk:      clock.Real{},
		limit:    rate.Limit(DefaultRate),
		log:      slog.New(slog.DiscardHandler),
		ids:      map[string]bool{},
		limiters: map[KeyRegion]*rate.Limiter{},
		recent:   map[KeyRegion][]time.Time{},
		perKey:   map[KeyRegion]*KeyStats{},
		// As strict as CloudTrail unless told otherwise.
		regionFilter: true,
		history:      core.History,
		anyRegion:    map[string]bool{},
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	e.seed(binary.LittleEndian.Uint64(b[:]))
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	if e.keys != nil && !e.verifySet {
		e.verify = SigV4Verifier()
	}
	if e.burst == 0 {
		e.burst = max(1, int(math.Ceil(float64(e.limit))))
		if e.limit == rate.Inf {
			e.burst = 1
		}
	}
	if err := e.Add(events...); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Emulator) seed(seed uint64) {
	e.rng = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// The token key comes from the seed so that a seeded emulator issues the same tokens each run.
	e.tokenKey = binary.LittleEndian.AppendUint64([]byte("trailproof-emulator-next-token:"), seed)
}

// Add makes more records available, for tests that play events in as an action runs. Records
// whose EventID is already served are ignored.
func (e *Emulator) Add(events ...core.RawEvent) error {
	prepared := make([]entry, 0, len(events))
	for _, ev := range events {
		if ev.EventID == "" || ev.EventTime.IsZero() {
			return core.Errorf(core.EINVALID, "emulator: event without EventID or EventTime")
		}
		env, err := corpus.EnvelopeOf(ev)
		if err != nil {
			return core.Errorf(core.EINVALID, "emulator: %v", err)
		}
		rec := gjson.ParseBytes(ev.Record)
		category := ev.Category
		if category == "" && strings.EqualFold(rec.Get("eventCategory").String(), "Insight") {
			category = core.CategoryInsight
		}
		region := rec.Get("awsRegion").String()
		if region == "" {
			region = ev.Region
		}
		prepared = append(prepared, entry{
			id: ev.EventID, at: ev.EventTime.UTC(), visible: ev.EventTime.UTC().Add(e.delay.For(ev.EventID)), env: env, record: string(ev.Record),
			region: region, category: category,
		})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range prepared {
		if e.ids[p.id] {
			continue
		}
		e.ids[p.id] = true
		e.entries = append(e.entries, p)
	}
	slices.SortFunc(e.entries, compareEntries)
	return nil
}

// Len returns how many records the emulator holds, visible or not.
func (e *Emulator) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.entries)
}

// compareEntries orders newest first, then by EventID so that equal times page stably.
func compareEntries(a, b entry) int {
	if c := b.at.Compare(a.at); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// apiError is an error answer in JSON 1.1's shape.
type apiError struct {
	status  int
	code    string
	message string
}

func (a *apiError) Error() string { return a.code + ": " + a.message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// lookupRequest is LookupEventsInput on the wire (StartTime and EndTime as epoch seconds).
type lookupRequest struct {
	StartTime        *float64 `json:"StartTime"`
	EndTime          *float64 `json:"EndTime"`
	EventCategory    string   `json:"EventCategory"`
	LookupAttributes []struct {
		AttributeKey   string  `json:"AttributeKey"`
		AttributeValue *string `json:"AttributeValue"`
	} `json:"LookupAttributes"`
	MaxResults *int    `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

// wireEvent is types.Event on the wire: the envelope, with EventTime in epoch seconds as JSON 1.1
// sends it (the outer field hides the envelope's RFC 3339 one), and the record as a string.
type wireEvent struct {
	corpus.Envelope
	EventTime       json.Number `json:"EventTime"`
	CloudTrailEvent string      `json:"CloudTrailEvent"`
}

type lookupResponse struct {
	Events    []wireEvent `json:"Events"`
	NextToken string      `json:"NextToken,omitempty"`
}

// query is a validated request.
type query struct {
	start, end *time.Time
	category   string
	attr       *core.LookupAttribute
	max        int
	region     string
	token      *pageToken
}

// ServeHTTP answers LookupEvents calls.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.requests++
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", e.requests)
	e.mu.Unlock()
	w.Header().Set("x-amzn-RequestId", reqID)

	if isSTS(r) {
		e.serveSTS(w, r, reqID)
		return
	}
	if r.Method != http.MethodPost || !strings.HasSuffix(r.Header.Get("X-Amz-Target"), Target) {
		e.writeError(w, r, badRequest(CodeUnknownOperation, "only LookupEvents is served (POST / with X-Amz-Target ending in %s), got %s %q", Target, r.Method, r.Header.Get("X-Amz-Target")), "")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		e.writeError(w, r, badRequest(CodeSerialization, "cannot read request body: %v", err), "")
		return
	}
	if e.faults.Slow > 0 {
		if err := e.clk.Sleep(r.Context(), e.faults.Slow); err != nil {
			return // the client went away
		}
	}
	cred, hasCred := parseCredential(r.Header.Get("Authorization"))
	kr := KeyRegion{AccessKeyID: cred.AccessKeyID, Region: cred.Region}
	now := e.clk.Now()

	e.mu.Lock()
	e.countCall(kr, now)
	e.mu.Unlock()

	if aerr := e.authorize(r, body, cred, hasCred); aerr != nil {
		e.reject(w, r, kr, aerr)
		return
	}
	if aerr := e.admit(kr, now); aerr != nil {
		e.reject(w, r, kr, aerr)
		return
	}
	q, aerr := e.parse(body, cred.Region)
	if aerr != nil {
		e.reject(w, r, kr, aerr)
		return
	}
	resp, aerr := e.lookup(q, now)
	if aerr != nil {
		e.reject(w, r, kr, aerr)
		return
	}
	e.mu.Lock()
	e.stats.Served++
	e.mu.Unlock()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		e.writeError(w, r, &apiError{status: http.StatusInternalServerError, code: CodeInternalFailure, message: "encode response: " + err.Error()}, kr.AccessKeyID)
		return
	}
	w.Header().Set("Content-Type", contentTypeJSON11)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
	e.log.Debug("lookupEvents", "accessKeyId", redact.MaskKey(kr.AccessKeyID), "region", kr.Region,
		"events", len(resp.Events), "nextToken", resp.NextToken != "", "requestId", reqID)
}

// countCall records a call in the stats; e.mu is held.
func (e *Emulator) countCall(kr KeyRegion, now time.Time) {
	e.stats.Calls++
	ks := e.keyStats(kr)
	ks.Calls++
	recent := e.recent[kr]
	cut := 0
	for cut < len(recent) && !recent[cut].After(now.Add(-time.Second)) {
		cut++
	}
	recent = append(recent[cut:], now)
	e.recent[kr] = recent
	ks.MaxPerSecond = max(ks.MaxPerSecond, len(recent))
}

func (e *Emulator) reject(w http.ResponseWriter, r *http.Request, kr KeyRegion, aerr *apiError) {
	e.mu.Lock()
	if aerr.status < 500 && aerr.code != CodeThrottling {
		e.stats.Rejected++
	}
	e.mu.Unlock()
	e.writeError(w, r, aerr, kr.AccessKeyID)
}

// authorize does what IAM does before the service sees a call: know the key, check the
// signature, check the permission.
func (e *Emulator) authorize(r *http.Request, body []byte, cred credential, hasCred bool) *apiError {
	if !hasCred && !e.unsigned {
		return &apiError{status: http.StatusBadRequest, code: CodeMissingAuthToken, message: "Missing Authentication Token"}
	}
	if e.keys == nil {
		return nil
	}
	if !hasCred {
		return &apiError{status: http.StatusBadRequest, code: CodeMissingAuthToken, message: "Missing Authentication Token"}
	}
	key, ok := e.keys[cred.AccessKeyID]
	if !ok {
		return badRequest(CodeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	if e.verify != nil {
		if err := e.verify(r, body, key); err != nil {
			return badRequest(CodeInvalidSignature, "The request signature we calculated does not match the signature you provided: %v", err)
		}
	}
	if key.Denied {
		account := key.AccountID
		if account == "" {
			account = "000000000000"
		}
		return badRequest(CodeAccessDenied, "User: arn:aws:iam::%s:user/%s is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action", account, redact.MaskKey(key.AccessKeyID))
	}
	return nil
}

// admit applies the rate limit, then the injected throttling and errors.
func (e *Emulator) admit(kr KeyRegion, now time.Time) *apiError {
	e.mu.Lock()
	defer e.mu.Unlock()
	lim, ok := e.limiters[kr]
	if !ok {
		lim = rate.NewLimiter(e.limit, e.burst)
		e.limiters[kr] = lim
	}
	if !lim.AllowN(now, 1) {
		e.stats.ThrottledRate++
		e.keyStats(kr).Throttled++
		return badRequest(CodeThrottling, "Rate exceeded")
	}
	if e.faults.Throttle > 0 && e.rng.Float64() < e.faults.Throttle {
		e.stats.ThrottledFault++
		e.keyStats(kr).Throttled++
		e.log.Info("injected fault", "fault", "throttle", "accessKeyId", redact.MaskKey(kr.AccessKeyID), "region", kr.Region)
		return badRequest(CodeThrottling, "Rate exceeded")
	}
	if e.faults.Error > 0 && e.rng.Float64() < e.faults.Error {
		e.stats.Errors++
		e.log.Info("injected fault", "fault", "error", "accessKeyId", redact.MaskKey(kr.AccessKeyID), "region", kr.Region)
		return &apiError{status: http.StatusInternalServerError, code: CodeInternalFailure, message: "The request processing has failed because of an unknown error, exception or failure."}
	}
	return nil
}

// matches applies the query's filters other than time.
func (e *Emulator) matches(q query, en *entry) bool {
	if (q.category == core.CategoryInsight) != (en.category == core.CategoryInsight) {
		return false
	}
	if !e.servedTo(en, q.region) {
		return false
	}
	if q.attr == nil {
		return true
	}
	v := q.attr.Value
	switch q.attr.Key {
	case core.AttrEventID:
		return en.env.EventID == v
	case core.AttrEventName:
		return en.env.EventName == v
	case core.AttrEventSource:
		return en.env.EventSource == v
	case core.AttrUsername:
		return en.env.Username == v
	case core.AttrAccessKeyID:
		return en.env.AccessKeyID == v
	case core.AttrReadOnly:
		return strings.EqualFold(en.env.ReadOnly, v)
	case core.AttrResourceType:
		return slices.ContainsFunc(en.env.Resources, func(r corpus.Resource) bool { return r.ResourceType == v })
	case core.AttrResourceName:
		return slices.ContainsFunc(en.env.Resources, func(r corpus.Resource) bool { return r.ResourceName == v })
	}
	return false
}

// lookup reads one page: visible records (eventTime + the record's delay <= now) in [start, end],
// newest first, after the token's position.
func (e *Emulator) lookup(q query, now time.Time) (lookupResponse, *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	upper := now.Add(-e.delay.Min())
	if q.end != nil && q.end.Before(upper) {
		upper = *q.end
	}
	// First entry at or before upper.
	i, _ := slices.BinarySearchFunc(e.entries, upper, func(en entry, t time.Time) int { return t.Compare(en.at) })
	resp := lookupResponse{Events: []wireEvent{}}
	var dup *entry
	if q.token != nil {
		pos := entry{at: q.token.At, id: q.token.ID}
		j, found := slices.BinarySearchFunc(e.entries, pos, compareEntries)
		if found {
			if e.faults.Dup > 0 && q.max > 1 && e.rng.Float64() < e.faults.Dup {
				dup = &e.entries[j]
			}
			j++
		}
		i = max(i, j)
	}
	if dup != nil {
		e.stats.Duplicates++
		e.log.Info("injected fault", "fault", "dup", "eventId", dup.id)
		resp.Events = append(resp.Events, toWire(dup))
	}
	var last *entry
	oldest := time.Time{}
	if e.history > 0 {
		oldest = now.Add(-e.history) // CloudTrail keeps 90 days
	}
	for ; i < len(e.entries); i++ {
		en := &e.entries[i]
		if q.start != nil && en.at.Before(*q.start) || en.at.Before(oldest) {
			break
		}
		if en.visible.After(now) || !e.matches(q, en) {
			continue
		}
		if len(resp.Events) == q.max {
			// Another event follows: hand out a token for the page after last.
			resp.NextToken = e.sealToken(pageToken{Query: q.fingerprint(), At: last.at, ID: last.id})
			break
		}
		resp.Events = append(resp.Events, toWire(en))
		last = en
		if en.region != q.region && !IsAWSRegion(en.region) {
			e.anyRegion[en.id] = true
		}
	}
	return resp, nil
}

func toWire(en *entry) wireEvent {
	env := en.env
	env.EventID = en.id
	if env.Resources == nil {
		env.Resources = []corpus.Resource{}
	}
	return wireEvent{
		Envelope:        env,
		EventTime:       json.Number(strconv.FormatFloat(float64(en.at.UnixMilli())/1000, 'f', -1, 64)),
		CloudTrailEvent: en.record,
	}
}

// writeError answers in JSON 1.1's error shape: the code in x-amzn-ErrorType and __type.
func (e *Emulator) writeError(w http.ResponseWriter, r *http.Request, aerr *apiError, accessKeyID string) {
	body, _ := json.Marshal(map[string]string{"__type": aerr.code, "message": aerr.message})
	w.Header().Set("Content-Type", contentTypeJSON11)
	w.Header().Set("x-amzn-ErrorType", aerr.code)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(aerr.status)
	_, _ = w.Write(body)
	e.log.Debug("lookupEvents refused", "accessKeyId", redact.MaskKey(accessKeyID), "status", aerr.status,
		"errorType", aerr.code, "message", aerr.message, "requestId", w.Header().Get("x-amzn-RequestId"))
	_ = r
}
