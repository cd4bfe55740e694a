// Command testsummary reads `go test -json` on stdin and prints what a person running the tests
// needs: the usual closing line of each package (ok, FAIL, no test files), the output of each
// failed test, and at the end every skipped test with its reason and the count of passed, failed
// and skipped tests. A run where 23 tests skipped no longer looks like a run where all passed.
//
//	go test -json ./... 2>&1 | go run ./cmd/testsummary
//
// It exits 1 when a test or a package failed (or the input held no test result), else 0.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(summarise(os.Stdin, os.Stdout))
}

func summarise(in io.Reader, out io.Writer) int {
	s, err := read(in, out)
	if err != nil {
		fmt.Fprintln(out, "testsummary:", err)
		return 1
	}
	s.print(out)
	if s.failed > 0 || s.pkgFailed || s.passed+s.failed+s.skipped == 0 && !s.noTests {
		return 1
	}
	return 0
}
