package sfntest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

// Resources of the optimized integrations the definition uses.
const (
	LambdaInvokeResource   = "arn:aws:states:::lambda:invoke"
	StartExecutionResource = "arn:aws:states:::states:startExecution"
)

// RawHandler is a Lambda function as the server calls it: the event's JSON in, a value to encode
// as JSON out.
type RawHandler func(ctx context.Context, event json.RawMessage) (any, error)

// Typed adapts a typed handler (the shape lambda.Start takes) to a RawHandler, decoding the event
// as the Lambda runtime does.
func Typed[In, Out any](h func(context.Context, In) (Out, error)) RawHandler {
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var in In
		if err := json.Unmarshal(event, &in); err != nil {
			return nil, messages.InvokeResponse_Error{Type: "UnmarshalTypeError", Message: err.Error()}
		}
		return h(ctx, in)
	}
}

// Invocation is one call the server answered.
type Invocation struct {
	Function string          // the function name or ARN invoked
	Payload  json.RawMessage // the event
	Output   json.RawMessage // the answer, when it succeeded
	Error    string          // the errorType, when it failed
	Message  string          // the errorMessage, when it failed
}

// StartExecution is a states:startExecution request the definition made.
type StartExecution struct {
	StateMachineArn string          `json:"StateMachineArn"`
	Name            string          `json:"Name"`
	Input           json.RawMessage `json:"Input"`
}

// BeforeInvoke is called before a function runs, with the function name, its event, and retry:
// how many times in a row this call repeats the previous one after that failed (a Retry), 0 for
// a first call.
type BeforeInvoke func(function string, event json.RawMessage, retry int)

// AfterInvoke is called after a function answered without error, with its answer.
type AfterInvoke func(function string, event, output json.RawMessage)

// LambdaServer implements Lambda's Invoke API over registered Go handlers.
type LambdaServer struct {
	srv    *httptest.Server
	before BeforeInvoke
	after  AfterInvoke

	mu          sync.Mutex
	handlers    map[string]RawHandler
	invocations []Invocation
	starts      []StartExecution
	lastFailed  *Invocation
	retries     int
}

// NewLambdaServer starts a server; Close it when done.
func NewLambdaServer() *LambdaServer {
	s := &LambdaServer{handlers: map[string]RawHandler{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", s.invoke)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the endpoint to give AWS_ENDPOINT_URL_LAMBDA.
func (s *LambdaServer) URL() string { return s.srv.URL }

// Close stops the server.
func (s *LambdaServer) Close() { s.srv.Close() }

// Handle registers the handler of a function name or ARN.
func (s *LambdaServer) Handle(function string, h RawHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[function] = h
}

// OnInvoke sets the hooks called before every function runs and after it answered (either may
// be nil).
func (s *LambdaServer) OnInvoke(before BeforeInvoke, after AfterInvoke) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before, s.after = before, after
}

// Invocations returns the calls answered so far, in order.
func (s *LambdaServer) Invocations() []Invocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Invocation(nil), s.invocations...)
}

// TakeStarts returns the startExecution requests made since the last call, and forgets them.
func (s *LambdaServer) TakeStarts() []StartExecution {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.starts
	s.starts = nil
	return out
}

func (s *LambdaServer) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeServiceError(w, http.StatusBadRequest, "InvalidRequestContentException", err.Error())
		return
	}
	switch name {
	case LambdaInvokeResource:
		var req struct {
			FunctionName string          `json:"FunctionName"`
			Payload      json.RawMessage `json:"Payload"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.FunctionName == "" {
			writeServiceError(w, http.StatusBadRequest, "InvalidRequestContentException",
				fmt.Sprintf("lambda:invoke parameters need FunctionName and Payload: %s", body))
			return
		}
		out, fnErr, ok := s.call(r.Context(), req.FunctionName, awsCause(req.Payload))
		if !ok {
			writeServiceError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+req.FunctionName)
			return
		}
		if fnErr != nil {
			writeFunctionError(w, fnErr)
			return
		}
		// What Step Functions' lambda:invoke integration returns; the definition keeps $.Payload.
		writeJSON(w, map[string]any{"ExecutedVersion": "$LATEST", "Payload": out, "StatusCode": 200})
	case StartExecutionResource:
		var req StartExecution
		if err := json.Unmarshal(body, &req); err != nil {
			writeServiceError(w, http.StatusBadRequest, "InvalidRequestContentException", err.Error())
			return
		}
		s.mu.Lock()
		s.starts = append(s.starts, req)
		s.mu.Unlock()
		writeJSON(w, map[string]any{
			"ExecutionArn": executionARN(req.StateMachineArn, req.Name),
			"StartDate":    time.Now().UTC().Format(time.RFC3339),
		})
	default:
		out, fnErr, ok := s.call(r.Context(), name, body)
		if !ok {
			writeServiceError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+name)
			return
		}
		if fnErr != nil {
			writeFunctionError(w, fnErr)
			return
		}
		writeJSON(w, out)
	}
}

// call runs a function; ok is false when none is registered under that name.
func (s *LambdaServer) call(ctx context.Context, function string, event json.RawMessage) (out json.RawMessage, fnErr *messages.InvokeResponse_Error, ok bool) {
	s.mu.Lock()
	h, ok := s.handlers[function]
	before, after := s.before, s.after
	retry := 0
	if s.lastFailed != nil && s.lastFailed.Function == function && jsonEqual(s.lastFailed.Payload, event) {
		s.retries++
		retry = s.retries
	} else {
		s.retries = 0
	}
	s.mu.Unlock()
	if !ok {
		return nil, nil, false
	}
	if before != nil {
		before(function, event, retry)
	}
	v, err := h(ctx, event)
	inv := Invocation{Function: function, Payload: event}
	if err == nil {
		if out, err = json.Marshal(v); err != nil {
			err = fmt.Errorf("encode the answer of %s: %w", function, err)
		}
	}
	if err != nil {
		e := errorResponse(err)
		fnErr = &e
		inv.Error, inv.Message = e.Type, e.Message
	} else {
		inv.Output = out
		if after != nil {
			after(function, event, out)
		}
	}
	s.mu.Lock()
	s.invocations = append(s.invocations, inv)
	if err != nil {
		s.lastFailed = &inv
	} else {
		s.lastFailed = nil
	}
	s.mu.Unlock()
	return out, fnErr, true
}

// errorResponse names an error as the Go Lambda runtime does: an InvokeResponse_Error as it is,
// any other error under its type's name.
func errorResponse(err error) messages.InvokeResponse_Error {
	var ive messages.InvokeResponse_Error
	if errors.As(err, &ive) {
		return ive
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return messages.InvokeResponse_Error{Type: t.Name(), Message: err.Error()}
}

// writeFunctionError answers as Lambda does for a function that returned an error: status 200,
// X-Amz-Function-Error, and the runtime's error document.
func writeFunctionError(w http.ResponseWriter, e *messages.InvokeResponse_Error) {
	w.Header().Set("X-Amz-Function-Error", "Unhandled")
	writeJSON(w, map[string]string{"errorType": e.Type, "errorMessage": e.Message})
}

// writeServiceError answers as Lambda's service does for a request it refuses.
func writeServiceError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}

// awsCause gives a caught error in a payload ({"error": {"Error", "Cause"}}) the Cause Step
// Functions gives: for a function's error, its error document as JSON. aws-local-stepfunctions
// puts "<errorType>: <errorMessage>" there instead.
func awsCause(payload json.RawMessage) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(payload, &p) != nil || p["error"] == nil {
		return payload
	}
	var e struct{ Error, Cause string }
	if json.Unmarshal(p["error"], &e) != nil {
		return payload
	}
	msg, ok := strings.CutPrefix(e.Cause, e.Error+": ")
	if !ok || json.Valid([]byte(e.Cause)) {
		return payload
	}
	cause, _ := json.Marshal(map[string]string{"errorMessage": msg, "errorType": e.Error})
	p["error"], _ = json.Marshal(map[string]string{"Error": e.Error, "Cause": string(cause)})
	out, err := json.Marshal(p)
	if err != nil {
		return payload
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
