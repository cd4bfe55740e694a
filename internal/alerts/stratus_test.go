package alerts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// detonation is one Stratus Red Team technique's detonation log, normalized.
type detonation struct {
	technique string
	records   []json.RawMessage
	events    []core.Event
}

func loadDetonations(t testing.TB) []detonation {
	t.Helper()
	dir := sharedData(t, "stratus-red-team/docs/detonation-logs")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no detonation logs in %s", dir)
	}
	n := normalizer(t)
	var out []detonation
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := detonation{technique: strings.TrimSuffix(filepath.Base(f), ".json")}
		if err := json.Unmarshal(b, &d.records); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range d.records {
			d.events = append(d.events, normalize(t, n, r))
		}
		out = append(out, d)
	}
	return out
}

// sigmaIndexEntry is one rule of sigma_aws_cloudtrail_index.json.
type sigmaIndexEntry struct {
	File  string `json:"file"`
	ID    string `json:"id"`
	Title string `json:"title"`
}

// TestSigmaRulesOnStratus checks each published Sigma detection written in CEL
// (testdata/sigma_*.cel) over the 35 real Stratus Red Team detonations: it must alert on at least
// one record of each detonation it is meant for and on no record of any other.
func TestSigmaRulesOnStratus(t *testing.T) {
	dets := loadDetonations(t)
	var index []sigmaIndexEntry
	b, err := os.ReadFile(sharedData(t, "sigma/sigma_aws_cloudtrail_index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	rules := rulesWithPrefix(t, "sigma_")
	if len(rules) < 2 {
		t.Fatalf("only %d Sigma rules in testdata", len(rules))
	}
	for _, r := range rules {
		t.Run(strings.TrimSuffix(r.file, ".cel"), func(t *testing.T) {
			checkCitation(t, r, index)
			checkOnStratus(t, r, dets)
		})
	}
}

// TestPantherRulesOnStratus runs the Panther rules written in CEL over the detonations too: each
// must alert on every Stratus technique Panther's rule reports (panther_rule_to_stratus.json,
// which the header repeats) and on no other.
func TestPantherRulesOnStratus(t *testing.T) {
	dets := loadDetonations(t)
	var mapping map[string][]string
	b, err := os.ReadFile(sharedData(t, "panther-analysis/panther_rule_to_stratus.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &mapping); err != nil {
		t.Fatal(err)
	}
	for _, r := range rulesWithPrefix(t, "panther_") {
		t.Run(r.header["panther"], func(t *testing.T) {
			want := slices.Sorted(slices.Values(mapping[r.header["panther"]]))
			if diff := cmp.Diff(want, slices.Sorted(slices.Values(r.stratus))); diff != "" {
				t.Errorf("%s: stratus header differs from panther_rule_to_stratus.json (-want +got):\n%s", r.file, diff)
			}
			checkOnStratus(t, r, dets)
		})
	}
}

// checkCitation makes sure the header cites a real Sigma rule by its id and title.
func checkCitation(t *testing.T, r rule, index []sigmaIndexEntry) {
	t.Helper()
	id, title, _ := strings.Cut(r.header["sigma"], " ")
	title = strings.Trim(title, `"`)
	for _, e := range index {
		if e.ID == id {
			if e.Title != title {
				t.Errorf("%s cites %s as %q; the index calls it %q", r.file, id, title, e.Title)
			}
			if !strings.Contains(r.header["source"], e.File) {
				t.Errorf("%s: source %q does not name %s", r.file, r.header["source"], e.File)
			}
			return
		}
	}
	t.Errorf("%s cites Sigma rule %q, which is not in the index", r.file, id)
}

// checkOnStratus compares which detonations the rule alerts on with those it is meant for.
func checkOnStratus(t *testing.T, r rule, dets []detonation) {
	t.Helper()
	q := mustCompile(t, r.expr)
	want, got := map[string]bool{}, map[string]bool{}
	hits := map[string][]string{}
	known := map[string]bool{}
	for _, d := range dets {
		known[d.technique] = true
		want[d.technique] = slices.Contains(r.stratus, d.technique)
		got[d.technique] = false
		for i, rec := range d.records {
			ok, err := q.Match(rec, &d.events[i])
			if err != nil {
				t.Errorf("%s record %s: %v", d.technique, d.events[i].EventID, err)
			}
			if ok {
				got[d.technique] = true
				hits[d.technique] = append(hits[d.technique], d.events[i].EventName)
			}
		}
	}
	for _, s := range r.stratus {
		if !known[s] {
			t.Errorf("%s names technique %s, which has no detonation log", r.file, s)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: detonations alerted on (-want +got):\n%s", r.file, diff)
	}
	t.Logf("%s: alerts %v", r.file, hits)
}
