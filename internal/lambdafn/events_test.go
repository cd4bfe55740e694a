package lambdafn_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/push"
	"github.com/trailproof/trailproof/internal/sfntest"
)

// inputs maps each function (its folder under functions/) to a new value of its handler's
// input type.
var inputs = map[string]func() any{
	"begin":     func() any { return new(lambdafn.Payload) },
	"fetch":     func() any { return new(lambdafn.Payload) },
	"correlate": func() any { return new(lambdafn.Payload) },
	"alerts":    func() any { return new(lambdafn.Payload) },
	"fail":      func() any { return new(lambdafn.FailInput) },
	"api":       func() any { return new(events.APIGatewayV2HTTPRequest) },
	"ingest":    func() any { return new(events.SQSEvent) },
}

// TestEvents decodes every sample event strictly into its function's input type, so a sample
// cannot drift from what the handler reads (a renamed field would be silently ignored by the
// Lambda runtime's lenient decoding).
func TestEvents(t *testing.T) {
	root, err := sfntest.Root()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		name := filepath.Base(filepath.Dir(f))
		if _, ok := inputs[name]; !ok {
			t.Errorf("functions/%s has no input type in this test", name)
		}
		if _, err := os.Stat(filepath.Join(root, "events", name, "main.json")); err != nil {
			t.Errorf("functions/%s has no events/%s/main.json", name, name)
		}
	}
	files, err := filepath.Glob(filepath.Join(root, "events", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no events")
	}
	for _, file := range files {
		rel, _ := filepath.Rel(root, file)
		t.Run(rel, func(t *testing.T) {
			fn := filepath.Base(filepath.Dir(file))
			newInput, ok := inputs[fn]
			if !ok {
				t.Fatalf("events/%s is for no function", fn)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			in := newInput()
			if err := dec.Decode(in); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			runID := "-"
			switch v := in.(type) {
			case *lambdafn.Payload:
				runID = v.RunID
				if !slices.Contains([]string{"begin"}, fn) && v.Status == "" {
					t.Errorf("%s: no status: a %s step follows one that set it", rel, fn)
				}
			case *events.APIGatewayV2HTTPRequest:
				if v.RawPath == "" || v.RequestContext.HTTP.Method == "" {
					t.Errorf("%s: an API Gateway request needs rawPath and requestContext.http.method", rel)
				}
			case *events.SQSEvent:
				// A batch of the push queue belongs to no run (runID stays "-").
				if len(v.Records) == 0 {
					t.Errorf("%s: an empty batch", rel)
				}
				for i, m := range v.Records {
					if _, err := push.Decode([]byte(m.Body)); err != nil || m.MessageId == "" {
						t.Errorf("%s: Records[%d]: messageId %q, body: %v", rel, i, m.MessageId, err)
					}
				}
			case *lambdafn.FailInput:
				runID = v.RunID
				if v.Error == nil || v.Error.Error == "" || v.Error.Cause == "" {
					t.Errorf("%s: the fail function is given the caught Error and Cause", rel)
				}
			}
			if runID == "" {
				t.Errorf("%s: no runId", rel)
			}
		})
	}
}
