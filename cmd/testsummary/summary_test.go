package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestSummarise(t *testing.T) {
	in, err := os.ReadFile("testdata/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		input    string
		wantCode int
		want     []string
	}{
		{"pass, skip and fail", string(in), 1, []string{
			"FAIL\texample.com/a\t0.012s\n", // go test's closing lines are kept
			"?   \texample.com/b\t[no test files]",
			"a_test.go:12: got 1, want 2", // a failed test's output
			"Skipped tests (1):\n  example.com/a.TestDynamo: store.go:40: DynamoDB Local is not running on 127.0.0.1:8000: run make stack-up",
			"FAIL: 1 passed, 1 failed, 1 skipped",
		}},
		{"a build error passes through", "# example.com/c\nc.go:3:1: syntax error\n", 1, []string{"c.go:3:1: syntax error", "0 passed, 0 failed, 0 skipped"}},
		{"all passed", `{"Action":"pass","Package":"p","Test":"T"}` + "\n" + `{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}` + "\n", 0,
			[]string{"ok  \tp\t0.1s", "PASS: 1 passed, 0 failed, 0 skipped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := summarise(strings.NewReader(tt.input), &out)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "TestOK (0.00s)") {
				t.Errorf("a passed test's output is printed:\n%s", out.String())
			}
		})
	}
}
