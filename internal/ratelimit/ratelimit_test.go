package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/ratelimit"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/storetest"
)

// newTable creates a PK/SK table in DynamoDB Local (skipping when it is absent).
func newTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	client := dynamo.LocalClient(storetest.DynamoEndpoint(t))
	suffix := make([]byte, 6)
	rand.Read(suffix)
	table := "trailproof-rate-" + hex.EncodeToString(suffix)
	str := types.ScalarAttributeTypeS
	_, err := client.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: str}, {AttributeName: aws.String("SK"), AttributeType: str}},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return client, table
}

// maxInOneSecond is the most grants less than a second apart, as the emulator counts calls.
func maxInOneSecond(grants []time.Time) int {
	slices.SortFunc(grants, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i := range grants {
		n := 0
		for j := i; j < len(grants) && grants[j].Sub(grants[i]) < time.Second; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// takers runs n goroutines that each reserve `each` calls of key at the time the clock shows
// and returns when each call was granted (now + wait).
func takers(t *testing.T, l ratelimit.Limiter, clk *clock.Virtual, key string, n, each int) []time.Time {
	t.Helper()
	var mu sync.Mutex
	var grants []time.Time
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range each {
				now := clk.Now()
				d, err := l.Reserve(context.Background(), key, now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				grants = append(grants, now.Add(d))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return grants
}

// TestDynamoBucketConcurrentTakers: many processes' worth of goroutines reserve calls from one
// DynamoDB bucket at once, on a clock the test controls: at no time are more than 2 calls due in
// one second, and the budget is not wasted (the last call is due when 2 per second say).
func TestDynamoBucketConcurrentTakers(t *testing.T) {
	client, table := newTable(t)
	b, err := ratelimit.NewDynamo(client, table, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0)
	grants := takers(t, b, clk, "acct|us-east-1", 8, 5)
	if len(grants) != 40 {
		t.Fatalf("%d grants, want 40", len(grants))
	}
	if most := maxInOneSecond(grants); most > 2 {
		t.Errorf("%d calls due within one second, want at most 2", most)
	}
	last := slices.MaxFunc(grants, func(a, b time.Time) int { return a.Compare(b) })
	if want := t0.Add(39 * 500 * time.Millisecond); !last.Equal(want) {
		t.Errorf("the 40th call is due at %s, want %s (2 per second from the start)", last, want)
	}

	// Time passes (the bucket refills only up to its burst), another wave comes, and another key
	// has its own budget.
	clk.Set(t0.Add(time.Minute))
	more := takers(t, b, clk, "acct|us-east-1", 4, 5)
	if most := maxInOneSecond(append(grants, more...)); most > 2 {
		t.Errorf("after a pause: %d calls due within one second, want at most 2", most)
	}
	other := takers(t, b, clk, "acct|eu-west-1", 1, 1)
	if !other[0].Equal(t0.Add(time.Minute)) {
		t.Errorf("another region's first call waits until %s: budgets are per key", other[0])
	}
}

// TestLocal: the in-process limiter keeps the same budget.
func TestLocal(t *testing.T) {
	t0 := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0)
	grants := takers(t, ratelimit.NewLocal(2, 1), clk, "k", 6, 5)
	if most := maxInOneSecond(grants); most > 2 {
		t.Errorf("%d calls due within one second, want at most 2", most)
	}
}

// TestWait sleeps on the clock until the reserved call is due.
func TestWait(t *testing.T) {
	t0 := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	clk := clock.NewVirtual(t0)
	l := ratelimit.NewLocal(2, 1)
	for range 3 {
		if err := ratelimit.Wait(context.Background(), l, clk, "k", time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := clk.Now().Sub(t0); got != time.Second {
		t.Errorf("three calls at 2 per second took %s of the clock, want 1s", got)
	}
}
