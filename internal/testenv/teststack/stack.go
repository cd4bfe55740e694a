// Package teststack builds the part of `trailproof serve` that tests run the API on: a bolt store in
// the test's temporary directory, a CloudTrail source factory that retries once without waiting,
// and the engine over both. It lives apart from testenv because it imports the packages whose own
// tests import testenv.
package teststack

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Stack is the store, the source factory and the engine of one test.
type Stack struct {
	Store   *bolt.Store
	DBPath  string
	Sources *cloudtrail.Factory
	Engine  *workflow.Engine
}

// New opens the store (closed when the test ends) and builds the factory and engine, logging to
// log and checking endpoints and proxies with policy (nil: the default, AWS only).
func New(tb testing.TB, log *slog.Logger, policy *netguard.Policy) *Stack {
	tb.Helper()
	dbPath := filepath.Join(tb.TempDir(), "trailproof.db")
	st, err := bolt.Open(dbPath)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	sources := cloudtrail.NewFactory(context.Background(), cloudtrail.WithLogger(log),
		cloudtrail.WithRetry(1, time.Millisecond, time.Millisecond), cloudtrail.WithPolicy(policy))
	return &Stack{Store: st, DBPath: dbPath, Sources: sources, Engine: workflow.New(st, sources, workflow.WithLogger(log))}
}
