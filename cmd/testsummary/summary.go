package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skip is a skipped test and why.
type skip struct {
	name, reason string
}

type summary struct {
	passed, failed, skipped int
	pkgFailed, noTests      bool
	skips                   []skip
}

// read copies package closing lines and failed tests' output to out as they come, and counts.
func read(in io.Reader, out io.Writer) (*summary, error) {
	s := &summary{}
	buf := map[string][]string{} // output of a running test, by package and name
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(out, "%s\n", line) // not test2json: a build error on stderr, say
			continue
		}
		key := ev.Package + " " + ev.Test
		switch {
		case ev.Action == "build-output":
			fmt.Fprint(out, ev.Output)
		case ev.Test == "" && ev.Action == "output":
			// Package level: keep go test's closing lines, drop the bare PASS.
			if o := strings.TrimSpace(ev.Output); o != "PASS" {
				fmt.Fprint(out, ev.Output)
				s.noTests = s.noTests || strings.Contains(o, "[no test files]")
			}
		case ev.Test == "" && ev.Action == "fail":
			s.pkgFailed = true
		case ev.Test == "":
		case ev.Action == "output":
			buf[key] = append(buf[key], ev.Output)
		case ev.Action == "pass":
			s.passed++
			delete(buf, key)
		case ev.Action == "fail":
			s.failed++
			for _, o := range buf[key] {
				fmt.Fprint(out, o)
			}
			delete(buf, key)
		case ev.Action == "skip":
			s.skipped++
			s.skips = append(s.skips, skip{name: ev.Package + "." + ev.Test, reason: reason(buf[key])})
			delete(buf, key)
		}
	}
	return s, sc.Err()
}

// reason is what a skipped test said last (t.Skip's message; earlier t.Log lines are not the
// reason), without go test's own framing lines.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		t := strings.TrimSpace(lines[i])
		if t != "" && !strings.HasPrefix(t, "=== ") && !strings.HasPrefix(t, "--- SKIP") {
			return t
		}
	}
	return "(no reason given)"
}

func (s *summary) print(out io.Writer) {
	if len(s.skips) > 0 {
		sort.Slice(s.skips, func(i, j int) bool { return s.skips[i].name < s.skips[j].name })
		fmt.Fprintf(out, "\nSkipped tests (%d):\n", len(s.skips))
		for _, k := range s.skips {
			fmt.Fprintf(out, "  %s: %s\n", k.name, k.reason)
		}
	}
	verdict := "PASS"
	if s.failed > 0 || s.pkgFailed {
		verdict = "FAIL"
	}
	fmt.Fprintf(out, "\n%s: %d passed, %d failed, %d skipped (subtests included)\n", verdict, s.passed, s.failed, s.skipped)
}
