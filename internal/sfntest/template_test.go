package sfntest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// TestTemplateWiring checks what cfn-lint cannot: that template.yaml, the state machine
// definition, infra/sam.mk and functions/ agree with each other, and that every IAM statement is
// scoped. goformation reads the typed parts; the policies (a mix of SAM policy templates,
// statements and Fn::If) are walked as plain YAML.
func TestTemplateWiring(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := goformation.ParseYAML(withoutNewerProperties(t, filepath.Join(root, "template.yaml")))
	if err != nil {
		t.Fatalf("goformation cannot read template.yaml: %v", err)
	}
	functions := tmpl.GetAllServerlessFunctionResources()
	machines := tmpl.GetAllServerlessStateMachineResources()
	if len(functions) == 0 || len(machines) != 1 {
		t.Fatalf("%d functions and %d state machines, want some and 1", len(functions), len(machines))
	}

	t.Run("substitutions", func(t *testing.T) {
		var sm *serverless.StateMachine
		for _, m := range machines {
			sm = m
		}
		if sm.DefinitionUri == nil || sm.DefinitionUri.String == nil {
			t.Fatal("the state machine has no DefinitionUri")
		}
		def, err := os.ReadFile(filepath.Join(root, *sm.DefinitionUri.String))
		if err != nil {
			t.Fatal(err)
		}
		var subs []string
		for k := range sm.DefinitionSubstitutions {
			subs = append(subs, k)
		}
		if diff := cmp.Diff(Placeholders(def), subs, cmpSorted); diff != "" {
			t.Errorf("${...} in %s vs DefinitionSubstitutions (-definition +template):\n%s", *sm.DefinitionUri.String, diff)
		}
		if sm.Type == nil || *sm.Type != "STANDARD" {
			t.Errorf("state machine type %v, want STANDARD (the wait can last minutes)", sm.Type)
		}
	})

	t.Run("functions", func(t *testing.T) {
		mk, err := os.ReadFile(filepath.Join(root, "infra", "sam.mk"))
		if err != nil {
			t.Fatal(err)
		}
		raw := readYAML(t, filepath.Join(root, "template.yaml"))
		globalFn, _ := dig(raw, "Globals", "Function").(map[string]any)
		folders, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		var wantIDs []string
		for _, f := range folders {
			name := filepath.Base(filepath.Dir(f))
			wantIDs = append(wantIDs, strings.ToUpper(name[:1])+name[1:]+"Function")
		}
		var ids []string
		for id, fn := range functions {
			ids = append(ids, id)
			// goformation does not apply Globals; the YAML gives what each function inherits.
			props, _ := dig(raw, "Resources", id, "Properties").(map[string]any)
			get := func(key string) any {
				if v, ok := props[key]; ok {
					return v
				}
				return globalFn[key]
			}
			if got := get("Runtime"); got != "provided.al2023" {
				t.Errorf("%s: runtime %v, want provided.al2023", id, got)
			}
			if got := get("Handler"); got != "bootstrap" {
				t.Errorf("%s: handler %v, want bootstrap", id, got)
			}
			if got, _ := get("Architectures").([]any); !slices.Equal(got, []any{"arm64"}) {
				t.Errorf("%s: architectures %v, want [arm64]", id, got)
			}
			if fn.AWSCloudFormationMetadata["BuildMethod"] != "makefile" {
				t.Errorf("%s: Metadata.BuildMethod %v, want makefile", id, fn.AWSCloudFormationMetadata["BuildMethod"])
			}
			target := regexp.MustCompile(`(?m)^\$\(eval \$\(call sam_build_target,` + id + `,([a-z]+)\)\)$`)
			m := target.FindSubmatch(mk)
			if m == nil {
				t.Errorf("%s: no build-%s target in infra/sam.mk", id, id)
			} else if _, err := os.Stat(filepath.Join(root, "functions", string(m[1]), "main.go")); err != nil {
				t.Errorf("%s: build-%s builds ./functions/%s, which does not exist", id, id, m[1])
			}
			env := get("Environment")
			if dig(env, "Variables", "TABLE_NAME") == nil && dig(globalFn, "Environment", "Variables", "TABLE_NAME") == nil {
				t.Errorf("%s: no TABLE_NAME", id)
			}
		}
		if diff := cmp.Diff(wantIDs, ids, cmpSorted); diff != "" {
			t.Errorf("functions/ folders vs template functions (-folders +template):\n%s", diff)
		}
	})

	t.Run("policies", func(t *testing.T) {
		raw := readYAML(t, filepath.Join(root, "template.yaml"))
		resources, _ := dig(raw, "Resources").(map[string]any)
		statements := 0
		for id, res := range resources {
			policies := dig(res, "Properties", "Policies")
			if policies == nil {
				continue
			}
			walk(policies, func(m map[string]any) {
				if _, ok := m["Action"]; !ok {
					return
				}
				statements++
				for _, a := range list(m["Action"]) {
					if a == "*" || strings.HasSuffix(a, ":*") {
						t.Errorf("%s: a statement allows %q", id, a)
					}
				}
				if m["Resource"] == nil || len(list(m["Resource"])) == 0 && dig(m, "Resource") == nil {
					t.Errorf("%s: a statement (%v) names no resource", id, m["Action"])
				}
				if slices.Contains(list(m["Resource"]), "*") && !starOnly(list(m["Action"])) {
					t.Errorf("%s: %v on Resource \"*\"; only actions without resource-level permissions may", id, m["Action"])
				}
			})
		}
		if statements == 0 {
			t.Error("no policy statement found: the walk is broken")
		}
	})
}

// newerProperties are function and API properties SAM has and goformation v7.14.9 does not know
// yet (it refuses unknown fields); cfn-lint checks them instead.
var newerProperties = []string{"LoggingConfig", "EnableIamAuthorizer", "AccessLogSettings"}

// withoutNewerProperties returns the template with newerProperties removed from every function
// and from Globals, so goformation can read the rest.
func withoutNewerProperties(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var strip func(n *yaml.Node)
	strip = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); {
				if slices.Contains(newerProperties, n.Content[i].Value) {
					n.Content = slices.Delete(n.Content, i, i+2)
					continue
				}
				i += 2
			}
		}
		for _, c := range n.Content {
			strip(c)
		}
	}
	strip(&doc)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// starOnly reports whether every action is one that AWS documents as taking no resource-level
// permissions, so that "*" is the only resource it can be granted on.
func starOnly(actions []string) bool {
	for _, a := range actions {
		if a != "cloudtrail:LookupEvents" && !strings.HasPrefix(a, "logs:") && !strings.HasPrefix(a, "xray:") {
			return false
		}
	}
	return len(actions) > 0
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := doc.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// dig follows keys through nested maps.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// walk calls f on every map inside v.
func walk(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, c := range x {
			walk(c, f)
		}
	case []any:
		for _, c := range x {
			walk(c, f)
		}
	}
}

// list turns a string or a list of strings into a list (an intrinsic such as !Ref or !Sub
// decodes to its argument).
func list(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
