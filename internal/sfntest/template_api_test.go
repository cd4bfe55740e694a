package sfntest

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trailproof/trailproof/internal/netguard"
)

// TestTemplateAPIProtections checks the cloud API's protections in template.yaml: stage
// throttling, an access log naming the caller and never a body, the api function's reserved
// concurrency, and the operator's allow-lists reaching every function. Each is a parameter with
// a default.
func TestTemplateAPIProtections(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	raw := readYAML(t, filepath.Join(root, "template.yaml"))
	params, _ := dig(raw, "Parameters").(map[string]any)
	// readYAML drops the short-form tags: !Ref Name reads as "Name", !If [c, a, b] as [c, a, b].
	ref := func(v any) string {
		s, _ := v.(string)
		if s == "" {
			t.Errorf("%v is not a parameter reference", v)
		} else if _, ok := params[s]; !ok || dig(params, s, "Default") == nil {
			t.Errorf("parameter %s is missing or has no default", s)
		}
		return s
	}

	api := dig(raw, "Resources", "HttpApi", "Properties")
	ref(dig(api, "DefaultRouteSettings", "ThrottlingRateLimit"))
	ref(dig(api, "DefaultRouteSettings", "ThrottlingBurstLimit"))

	format, _ := dig(api, "AccessLogSettings", "Format").(string)
	var fields map[string]string
	if err := json.Unmarshal([]byte(format), &fields); err != nil {
		t.Fatalf("the access log format is not JSON: %v\n%s", err, format)
	}
	for key, want := range map[string]string{"callerArn": "$context.authorizer.iam.userArn", "routeKey": "$context.routeKey",
		"path": "$context.path", "status": "$context.status", "requestId": "$context.requestId"} {
		if fields[key] != want {
			t.Errorf("access log %s = %q, want %q", key, fields[key], want)
		}
	}
	for key, v := range fields {
		if strings.Contains(strings.ToLower(v), "body") || strings.Contains(v, "$input") {
			t.Errorf("access log %s logs a body: %s", key, v)
		}
	}
	if dig(api, "AccessLogSettings", "DestinationArn") == nil {
		t.Error("the access log has no destination")
	}

	rc, _ := dig(raw, "Resources", "ApiFunction", "Properties", "ReservedConcurrentExecutions").([]any)
	if len(rc) != 3 || ref(rc[1]) != "ApiReservedConcurrency" {
		t.Errorf("ApiFunction ReservedConcurrentExecutions = %v, want the ApiReservedConcurrency parameter", rc)
	}

	vars, _ := dig(raw, "Globals", "Function", "Environment", "Variables").(map[string]any)
	for _, env := range []string{netguard.EnvAllowEndpoints, netguard.EnvAllowProxies} {
		if v, ok := vars[env]; !ok {
			t.Errorf("the functions do not get %s", env)
		} else if p := ref(v); !slices.Contains([]string{"AllowEndpoints", "AllowProxies"}, p) {
			t.Errorf("%s comes from %s", env, p)
		}
	}
}
