// Package api is the Director's HTTP API: integrations, their connectivity test, and correlation
// runs. One net/http handler serves it in both places trailproof runs: behind API Gateway (an
// HTTP API whose Lambda function adapts the events with aws-lambda-go-api-proxy) and in
// `trailproof serve`. What differs between the two is passed in: the store, how a run is started
// (RunStarter) and how a caller is authenticated (Authenticator). infra/openapi.yaml describes
// every endpoint and shape.
//
//	POST   /v1/integrations               create (MSI or Legacy settings)        201
//	GET    /v1/integrations               list                                   200
//	GET    /v1/integrations/{id}          get                                    200
//	PUT    /v1/integrations/{id}          replace (secrets kept, see below)      200
//	DELETE /v1/integrations/{id}          delete (409 while a run is active)     204
//	POST   /v1/integrations/{id}/test     connectivity test                      200
//	GET    /v1/integrations/{id}/sensors  the accounts and regions its runs read 200
//	POST   /v1/integrations/{id}/runs     start a run of an action               202
//	GET    /v1/runs/{id}                  the run result, events paged           200
//	GET    /v1/runs/{id}/events           one list of the run (events, alerts, suspicious), paged
//	DELETE /v1/runs/{id}                  cancel (422 when the run has ended)    200
//	POST   /v1/ingest                     store pushed CloudTrail events (serve only)  200
//
// Errors are {"error": {"code", "message", "field"}} with the status of the code: 400 invalid,
// 401 unauthorized, 404 not found, 405 method not allowed, 409 conflict, 413 body over the limit,
// 415 not JSON, 422 cannot be done in the run's state, 500 internal (details only in the log).
//
// Secrets are write-only. Responses carry "********" where a secret is set (core.Secret marshals
// so). On PUT a secret given as "********", or left out while the credential it belongs to is
// unchanged (the same accessKeyId for secretAccessKey and sessionToken, the same roleArn for
// externalId), keeps the stored value, so a Director can send back what it read. A kept secret
// follows its destination: a PUT that keeps one while changing type, awsRegion, roleArn,
// externalId, endpoint, proxy or verifySsl is refused (400 naming the field), since the caller
// would otherwise choose where the owner's secret is sent (core.ParseIntegrationUpdate).
//
// Paging: GET /v1/runs/{id} and GET /v1/runs/{id}/events take ?limit= (1 to 1000, default 100)
// and either ?cursor= (the page.nextCursor of the previous page, opaque) or ?offset= (a count of
// items to skip); "page" in the answer says {limit, offset, total, nextCursor}, and nextCursor is
// absent on the last page. The run result pages its events list; alerts and suspicious events,
// bounded by the integration's limit like events but usually few, come whole there and paged from
// /events?list=alerts|suspicious.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/service"
	"github.com/trailproof/trailproof/internal/workflow"
)

// DefaultMaxBodyBytes is the largest request body accepted (1 MiB): integration settings and
// actions are a few kilobytes; anything near this is a mistake or an attack.
const DefaultMaxBodyBytes = 1 << 20

// RunStarter executes stored runs: a goroutine per run in `trailproof serve`, a Step Functions
// execution in AWS.
type RunStarter interface {
	// Start makes sure the stored run runID is executing. It is idempotent: starting a run that
	// is already executing (or has ended) starts nothing new.
	Start(ctx context.Context, runID string) error
	// Cancel stops the execution of runID, which the store already records as cancelled. A run
	// that is not executing is no error.
	Cancel(ctx context.Context, runID string) error
}

// Tester runs the connectivity test of an integration (connectivity.Tester is one).
type Tester interface {
	Test(ctx context.Context, in *core.Integration) connectivity.Report
}

// Authenticator decides whether a request may use the API; an error is answered 401 with its
// message. It runs before routing, so an unauthenticated caller learns nothing about what exists.
type Authenticator func(r *http.Request) error

// Config is what the handler needs.
type Config struct {
	Store  core.Store
	Engine *workflow.Engine // creates and cancels runs in Store
	Runs   RunStarter
	Tester Tester
	// Policy is where an integration's credentials may be sent; settings it refuses are not
	// saved (400 naming endpoint, proxy or verifySsl). Nil allows AWS CloudTrail hosts only. Give
	// the run's source factory and the Tester the same policy: they enforce it when connecting.
	Policy *netguard.Policy
	// Auth authenticates every request. Required: use BearerToken locally, and behind API
	// Gateway's IAM authorization an Authenticator that checks the gateway's request context
	// (internal/api/awsapi).
	Auth Authenticator
	// Challenge is the WWW-Authenticate value of a 401 (default: Bearer realm="trailproof").
	Challenge string
	Logger    *slog.Logger // request log and errors (default: discard)
	// MaxBodyBytes limits request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Now dates integrations' createdAt and updatedAt (default time.Now).
	Now func() time.Time
	// Ingest serves POST /v1/ingest (`trailproof serve`). Behind API Gateway pushed events come
	// through the push queue and its ingest function instead, and the route does not exist.
	Ingest bool
}

// Handler serves the API.
type Handler struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
	svc *service.Service // the domain rules the handlers apply
}

// New returns the API handler.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("api: no store")
	case cfg.Engine == nil:
		return nil, errors.New("api: no workflow engine")
	case cfg.Runs == nil:
		return nil, errors.New("api: no run starter")
	case cfg.Tester == nil:
		return nil, errors.New("api: no connectivity tester")
	case cfg.Auth == nil:
		return nil, errors.New("api: no authenticator: every endpoint needs one")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Challenge == "" {
		cfg.Challenge = `Bearer realm="trailproof"`
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, svc: service.New(cfg.Store, cfg.Engine, cfg.Now)}
	routes := []route{
		{"POST /v1/integrations", h.createIntegration},
		{"GET /v1/integrations", h.listIntegrations},
		{"GET /v1/integrations/{id}", h.getIntegration},
		{"PUT /v1/integrations/{id}", h.putIntegration},
		{"DELETE /v1/integrations/{id}", h.deleteIntegration},
		{"POST /v1/integrations/{id}/test", h.testIntegration},
		{"GET /v1/integrations/{id}/sensors", h.listSensors},
		{"POST /v1/integrations/{id}/runs", h.startRun},
		{"GET /v1/runs/{id}", h.getRun},
		{"GET /v1/runs/{id}/events", h.runEvents},
		{"DELETE /v1/runs/{id}", h.cancelRun},
	}
	if cfg.Ingest {
		routes = append(routes, route{"POST /v1/ingest", h.ingest})
	}
	for _, rt := range routes {
		h.mux.Handle(rt.pattern, h.endpoint(rt.fn))
	}
	h.mux.Handle("/", h.endpoint(h.noRoute))
	return h, nil
}

// route is one endpoint of the API.
type route struct {
	pattern string
	fn      func(http.ResponseWriter, *http.Request) error
}

// ServeHTTP authenticates, routes and logs the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	reqID := r.Header.Get("X-Request-Id")
	if !requestIDPattern.MatchString(reqID) {
		reqID = uuid.NewString()
	}
	rec.Header().Set("X-Request-Id", reqID)
	rec.Header().Set("Cache-Control", "no-store")
	rec.Header().Set("X-Content-Type-Options", "nosniff")
	defer func() {
		if p := recover(); p != nil {
			h.log.ErrorContext(r.Context(), "panic", "requestId", reqID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, core.Errorf(core.EINTERNAL, "internal error"))
			}
		}
		h.log.InfoContext(r.Context(), "request", "requestId", reqID, "method", r.Method, "path", r.URL.Path,
			"route", r.Pattern, "status", rec.status, "bytes", rec.bytes, "durationMs", time.Since(start).Milliseconds())
	}()
	if err := h.cfg.Auth(r); err != nil {
		rec.Header().Set("WWW-Authenticate", h.cfg.Challenge)
		e := &core.Error{Code: core.EUNAUTHORIZED, Message: core.ErrorMessage(err)}
		if core.ErrorCode(err) == core.EINTERNAL {
			e.Message = "authentication required"
		}
		writeError(rec, e)
		return
	}
	h.mux.ServeHTTP(rec, r)
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// endpoint adapts a handler that returns an error; the error is answered as JSON.
func (h *Handler) endpoint(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		if Status(core.ErrorCode(err)) >= http.StatusInternalServerError { // ours to fix, not the caller's
			h.log.ErrorContext(r.Context(), "request failed", "requestId", w.Header().Get("X-Request-Id"),
				"method", r.Method, "path", r.URL.Path, "error", err.Error())
		}
		writeError(w, err)
	})
}

// noRoute answers what no pattern matched: 405 with Allow when the path exists under other
// methods, else 404.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header()["Allow"] = allow
		return &core.Error{Code: codeMethodNotAllowed, Message: fmt.Sprintf("method %s is not allowed on %s; allowed: %v", r.Method, r.URL.Path, allow)}
	}
	return core.Errorf(core.ENOTFOUND, "no such endpoint: %s %s (see infra/openapi.yaml)", r.Method, r.URL.Path)
}

// codeMethodNotAllowed is the API's own code for 405, beside core's codes.
const codeMethodNotAllowed = "method_not_allowed"

// Status returns the HTTP status of an error code.
func Status(code string) int {
	switch code {
	case core.EINVALID:
		return http.StatusBadRequest
	case core.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case core.ENOTFOUND:
		return http.StatusNotFound
	case codeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case core.ECONFLICT:
		return http.StatusConflict
	case core.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case core.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case core.EUNPROCESSABLE:
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: a code for machines, a message for people, and the field
// (dotted path, or a path or query parameter) when one is to blame.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, err error) {
	code := core.ErrorCode(err)
	writeJSON(w, Status(code), ErrorBody{Error: ErrorDetail{Code: code, Message: core.ErrorMessage(err), Field: core.ErrorField(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// recorder remembers the status and size of the answer, for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
