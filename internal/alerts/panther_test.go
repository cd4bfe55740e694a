package alerts

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pantherTest is one line of panther_cloudtrail_rule_tests.jsonl: a unit test of a Panther rule.
type pantherTest struct {
	RuleID   string          `json:"rule_id"`
	TestName string          `json:"test_name"`
	Expected bool            `json:"expected_result"`
	Log      json.RawMessage `json:"log"`
}

func loadPantherTests(t *testing.T) map[string][]pantherTest {
	t.Helper()
	f, err := os.Open(sharedData(t, "panther-analysis/panther_cloudtrail_rule_tests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]pantherTest{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		var pt pantherTest
		if err := json.Unmarshal(sc.Bytes(), &pt); err != nil {
			t.Fatalf("panther tests line %d: %v", line, err)
		}
		out[pt.RuleID] = append(out[pt.RuleID], pt)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPantherRules checks each Panther rule written in CEL (testdata/panther_*.cel) against every
// one of that rule's published unit tests: the CEL rule must give the expected true/false.
func TestPantherRules(t *testing.T) {
	tests := loadPantherTests(t)
	n := normalizer(t)
	rules := rulesWithPrefix(t, "panther_")
	if len(rules) < 2 {
		t.Fatalf("only %d Panther rules in testdata", len(rules))
	}
	for _, r := range rules {
		id := r.header["panther"]
		t.Run(id, func(t *testing.T) {
			cases := tests[id]
			if len(cases) == 0 {
				t.Fatalf("%s: no Panther tests for rule %q", r.file, id)
			}
			q := mustCompile(t, r.expr)
			want, got := map[string]bool{}, map[string]bool{}
			trues := 0
			for i, c := range cases {
				key := fmt.Sprintf("%d %s", i, c.TestName)
				want[key] = c.Expected
				if c.Expected {
					trues++
				}
				ev := normalize(t, n, c.Log)
				ok, err := q.Match(c.Log, &ev)
				if err != nil {
					t.Errorf("%s: %v", key, err)
				}
				got[key] = ok
			}
			if trues == 0 || trues == len(cases) {
				t.Errorf("rule %s has %d true of %d tests: pick a rule whose tests go both ways", id, trues, len(cases))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s over Panther's tests (-want +got):\n%s", r.file, diff)
			}
			t.Logf("%s: %d tests (%d expected true) all as Panther expects", id, len(cases), trues)
		})
	}
}
