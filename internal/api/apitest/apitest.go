// Package apitest checks, in tests, that every answer the API gives is what infra/openapi.yaml
// says: an http.RoundTripper that validates each response with kin-openapi's openapi3filter as the
// test client receives it. The tests of internal/api, internal/server and functions/api use it,
// so the spec cannot drift from the handler without a test failing.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// SpecPath finds infra/openapi.yaml from the working directory up to the module root.
func SpecPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "infra", "openapi.yaml"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Validator validates responses against the spec and counts them.
type Validator struct {
	doc    *openapi3.T
	router routers.Router

	mu      sync.Mutex
	checked map[string]int // operation or "status" -> responses validated
}

// Load reads and validates the spec.
func Load() (*Validator, error) {
	path, err := SpecPath()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", path, err)
	}
	// Tests call servers on ephemeral ports: match on the paths alone.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", path, err)
	}
	return &Validator{doc: doc, router: router, checked: map[string]int{}}, nil
}

// MustLoad is Load for tests.
func MustLoad(t testing.TB) *Validator {
	t.Helper()
	v, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Validate checks one response (whose body has been read into body) to req.
func (v *Validator) Validate(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		// No operation (an unknown path, or a method the path lacks): the answer must still be
		// the documented error shape.
		if status < 400 {
			return fmt.Errorf("%s %s answered %d but the spec has no such operation: %v", req.Method, req.URL.Path, status, err)
		}
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			return fmt.Errorf("%s %s: error body is not JSON: %v", req.Method, req.URL.Path, err)
		}
		if err := v.doc.Components.Schemas["Error"].Value.VisitJSON(doc, openapi3.EnableJSONSchema2020()); err != nil {
			return fmt.Errorf("%s %s: error body does not match the Error schema: %v", req.Method, req.URL.Path, err)
		}
		v.count(fmt.Sprintf("unrouted %d", status))
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		// kin-openapi's message goes on with the whole schema and value: its first line says it.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return fmt.Errorf("%s %s answered %d, which the spec does not allow: %s\nbody: %.300s", req.Method, req.URL.Path, status, msg, body)
	}
	v.count(fmt.Sprintf("%s %d", route.Operation.OperationID, status))
	return nil
}

func (v *Validator) count(k string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.checked[k]++
}

// Checked returns how many responses were validated, per operation and status.
func (v *Validator) Checked() map[string]int {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]int, len(v.checked))
	for k, n := range v.checked {
		out[k] = n
	}
	return out
}

// Transport returns a RoundTripper that validates every response through base
// (http.DefaultTransport when nil), reporting mismatches with t.Errorf.
func (v *Validator) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(req)
		if err != nil {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if verr := v.Validate(req, resp.StatusCode, resp.Header, body); verr != nil {
			t.Errorf("openapi: %v", verr)
		}
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
