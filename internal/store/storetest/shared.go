package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// runShared runs the conformance tests of the stream ledger and leases (core.SharedReadStore).
func runShared(t *testing.T, newStore NewStore) {
	t.Run("Ledger", func(t *testing.T) { testLedger(t, open(t, newStore)) })
	t.Run("Lease", func(t *testing.T) { testLease(t, open(t, newStore)) })
	t.Run("LeaseContention", func(t *testing.T) { testLeaseContention(t, open(t, newStore)) })
}

func testLedger(t *testing.T, s core.SharedReadStore) {
	ctx := context.Background()
	l, err := s.GetLedger(ctx, "it#us-east-1#")
	must(t, "GetLedger of a new stream", err)
	if l.Version != 0 || len(l.Spans) != 0 || l.Stream != "it#us-east-1#" {
		t.Fatalf("new ledger = %+v, want an empty one with version 0", l)
	}
	l.Spans = []core.SpanRead{{From: t0, To: t0.Add(time.Minute), ReadAt: t0.Add(6 * time.Minute)}}
	must(t, "PutLedger (create)", s.PutLedger(ctx, l))
	if l.Version != 1 {
		t.Errorf("version after the first put = %d, want 1", l.Version)
	}
	stale := &core.Ledger{Stream: l.Stream}
	wantCode(t, "PutLedger creating over an existing ledger", s.PutLedger(ctx, stale), core.ECONFLICT)

	l.Spans = append(l.Spans, core.SpanRead{From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute), ReadAt: t0.Add(7 * time.Minute)})
	must(t, "PutLedger (update)", s.PutLedger(ctx, l))
	old := *l
	old.Version = 1
	wantCode(t, "PutLedger with an old version", s.PutLedger(ctx, &old), core.ECONFLICT)

	got, err := s.GetLedger(ctx, l.Stream)
	must(t, "GetLedger", err)
	if diff := cmp.Diff(l, got); diff != "" {
		t.Errorf("stored ledger (-put +got):\n%s", diff)
	}
	other, err := s.GetLedger(ctx, "it#eu-west-1#")
	must(t, "GetLedger of another stream", err)
	if other.Version != 0 || len(other.Spans) != 0 {
		t.Errorf("another stream's ledger = %+v, want empty", other)
	}
}

func testLease(t *testing.T, s core.SharedReadStore) {
	ctx := context.Background()
	const name = "it#us-east-1#"
	ttl := 30 * time.Second
	l, ok, err := s.AcquireLease(ctx, name, "run-a", t0, ttl)
	must(t, "AcquireLease (free)", err)
	if !ok || l.Holder != "run-a" || !l.Expires.Equal(t0.Add(ttl)) {
		t.Fatalf("first acquire = %+v, %v; want run-a until %s", l, ok, t0.Add(ttl))
	}
	l, ok, err = s.AcquireLease(ctx, name, "run-b", t0.Add(10*time.Second), ttl)
	must(t, "AcquireLease (held)", err)
	if ok || l.Holder != "run-a" {
		t.Errorf("acquire of a held lease = %+v, %v; want refused, held by run-a", l, ok)
	}
	l, ok, err = s.AcquireLease(ctx, name, "run-a", t0.Add(20*time.Second), ttl)
	must(t, "AcquireLease (renew)", err)
	if !ok || !l.Expires.Equal(t0.Add(50*time.Second)) {
		t.Errorf("renewal = %+v, %v; want held until %s", l, ok, t0.Add(50*time.Second))
	}
	must(t, "ReleaseLease by another holder", s.ReleaseLease(ctx, name, "run-b"))
	if _, ok, _ := s.AcquireLease(ctx, name, "run-b", t0.Add(30*time.Second), ttl); ok {
		t.Errorf("run-b took the lease after releasing one it did not hold")
	}
	// A holder that died: its lease expires and another takes it.
	l, ok, err = s.AcquireLease(ctx, name, "run-b", t0.Add(50*time.Second), ttl)
	must(t, "AcquireLease (expired)", err)
	if !ok || l.Holder != "run-b" {
		t.Errorf("acquire of an expired lease = %+v, %v; want run-b", l, ok)
	}
	must(t, "ReleaseLease", s.ReleaseLease(ctx, name, "run-b"))
	if _, ok, _ := s.AcquireLease(ctx, name, "run-c", t0.Add(51*time.Second), ttl); !ok {
		t.Errorf("run-c could not take a released lease")
	}
	must(t, "ReleaseLease of an absent lease", s.ReleaseLease(ctx, "absent", "run-c"))
}

// testLeaseContention: many goroutines try to take one free lease at the same instant; exactly
// one gets it.
func testLeaseContention(t *testing.T, s core.SharedReadStore) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var holders []string
	for i := range n {
		wg.Go(func() {
			holder := string(rune('a' + i))
			_, ok, err := s.AcquireLease(ctx, "contended", holder, t0, time.Minute)
			if err != nil {
				t.Errorf("AcquireLease %s: %v", holder, err)
				return
			}
			if ok {
				mu.Lock()
				holders = append(holders, holder)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(holders) != 1 {
		t.Errorf("%d goroutines hold the lease (%v), want exactly 1", len(holders), holders)
	}
}
