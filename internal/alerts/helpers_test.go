package alerts

import (
	"encoding/json"
	"github.com/trailproof/trailproof/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
)

// sharedData finds shared/data/cloudtrail/sub beside the repository, walking up from the
// package, and skips the test when it is absent (the records are never copied into the repo).
func sharedData(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data", "cloudtrail")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return filepath.Join(p, sub)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			testenv.Skip(t, "shared/data/cloudtrail not found beside the repository; real-record tests skipped")
		}
		dir = parent
	}
}

// rule is one testdata/*.cel file: the query and the header lines that say what it expresses.
type rule struct {
	file    string
	expr    string
	header  map[string]string // "sigma", "panther", "stratus", "source" ...
	stratus []string          // techniques the rule is meant to detect
}

// loadRule reads a testdata rule; the file is compiled as it is, comments included.
func loadRule(t testing.TB, name string) rule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r := rule{file: name, expr: string(b), header: map[string]string{}}
	for _, line := range strings.Split(r.expr, "\n") {
		rest, ok := strings.CutPrefix(line, "// ")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(rest, ": "); ok && !strings.Contains(k, " ") {
			r.header[k] = strings.TrimSpace(v)
		}
	}
	for _, s := range strings.Split(r.header["stratus"], ",") {
		if s = strings.TrimSpace(s); s != "" {
			r.stratus = append(r.stratus, s)
		}
	}
	return r
}

// rulesWithPrefix lists testdata/<prefix>*.cel.
func rulesWithPrefix(t testing.TB, prefix string) []rule {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*.cel"))
	if err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, f := range files {
		out = append(out, loadRule(t, filepath.Base(f)))
	}
	return out
}

// normalizer is the one the brief's integration gives: default field map, no adjustment.
func normalizer(t testing.TB) *core.Normalizer {
	t.Helper()
	in, err := core.ParseIntegration([]byte(`{"name":"t","awsRegion":"us-east-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	return core.NewNormalizer(in)
}

// normalize builds the event a run would hand the rule for one CloudTrail record.
func normalize(t testing.TB, n *core.Normalizer, record json.RawMessage) core.Event {
	t.Helper()
	var head struct {
		EventID   string `json:"eventID"`
		EventTime string `json:"eventTime"`
		Region    string `json:"awsRegion"`
	}
	if err := json.Unmarshal(record, &head); err != nil {
		t.Fatalf("record: %v", err)
	}
	raw := &core.RawEvent{EventID: head.EventID, Region: head.Region, Record: record}
	if head.EventTime != "" {
		tm, err := corpus.ParseTime(head.EventTime)
		if err != nil {
			t.Fatalf("record %s: eventTime: %v", head.EventID, err)
		}
		raw.EventTime = tm
	}
	return n.Normalize(raw)
}

func mustCompile(t testing.TB, expr string, opts ...Option) *Query {
	t.Helper()
	q, err := Compile(expr, opts...)
	if err != nil {
		t.Fatalf("compile %q: %v", expr, err)
	}
	return q
}
