// Package testenv finds what tests need outside the repository: the real CloudTrail records in
// ../shared/data/cloudtrail and the local test stack. A test skips with a message when a piece is
// absent, except in CI (TRAILPROOF_REQUIRE_STACK=1), where a missing piece is a failure.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Required reports whether absent pieces fail tests instead of skipping them.
func Required() bool { return os.Getenv("TRAILPROOF_REQUIRE_STACK") == "1" }

// Skip skips the test with a message, or fails it when the stack is required.
func Skip(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if Required() {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// RepoRoot returns the repository's root folder (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// SharedData returns ../shared/data/cloudtrail/<rel> beside the repository root, skipping the
// test when it is absent (the records are test data, never copied into the repository).
func SharedData(tb testing.TB, rel ...string) string {
	tb.Helper()
	p := filepath.Join(append([]string{filepath.Dir(RepoRoot()), "shared", "data", "cloudtrail"}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		Skip(tb, "real CloudTrail records not found at %s (../shared/data/cloudtrail beside the repository)", p)
	}
	return p
}
