// Package ratelimit is LookupEvents' budget of 2 calls per second per account and region, kept
// across every process that reads CloudTrail for the account: concurrent Lambda invocations share
// a token bucket item in DynamoDB (Dynamo); one process (`trailproof serve`) can use Local, the
// same golang.org/x/time/rate limiter the cloudtrail.Factory keeps per identity and region.
//
// A Limiter reserves: it takes the call from the budget at once, possibly going into debt, and
// says how long to wait before making it. Callers therefore wait once, in order, instead of
// polling a shared item, and never exceed the rate: a reservation that is not used wastes one
// call of budget, nothing more.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/trailproof/trailproof/internal/clock"
)

// Limiter is a call budget per key (an AWS identity and region, e.g. "arn:aws:iam::1:role/r|us-east-1").
type Limiter interface {
	// Reserve takes one call from key's budget at now (the caller's clock) and returns how long to
	// wait before making it: 0 when it may go at once.
	Reserve(ctx context.Context, key string, now time.Time) (time.Duration, error)
}

// ErrTooLate says that a call's turn in the budget comes only at or after the caller's limit.
var ErrTooLate = errors.New("the rate budget's next free call comes too late")

// Wait reserves a call of key's budget and sleeps on clk until it is due. With until set (not
// zero) it returns ErrTooLate instead of sleeping up to or past until; the reserved call is then
// spent (another process's bucket cannot give it back).
func Wait(ctx context.Context, l Limiter, clk clock.Clock, key string, until time.Time) error {
	d, err := l.Reserve(ctx, key, clk.Now())
	if err != nil {
		return fmt.Errorf("rate budget %s: %w", key, err)
	}
	if d <= 0 {
		return ctx.Err()
	}
	if !until.IsZero() && !clk.Now().Add(d).Before(until) {
		return ErrTooLate
	}
	return clk.Sleep(ctx, d)
}

// Local is an in-process Limiter: one token bucket per key, in memory.
type Local struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

var _ Limiter = (*Local)(nil)

// NewLocal returns a Local allowing perSecond calls per key with bursts of burst.
func NewLocal(perSecond float64, burst int) *Local {
	return &Local{limit: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[string]*rate.Limiter{}}
}

// Reserve takes one call from key's bucket.
func (l *Local) Reserve(_ context.Context, key string, now time.Time) (time.Duration, error) {
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return 0, fmt.Errorf("the limiter refuses calls (burst %d)", l.burst)
	}
	return r.DelayFrom(now), nil
}
