// Package clock gives the workflow, the CloudTrail source and the emulator one notion of time, so
// a run can be replayed on a virtual clock (no real sleeping) with exactly the same steps as on the
// real one.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and waits. Sleep returns ctx.Err() when the context ends first.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now in UTC.
func (Real) Now() time.Time { return time.Now().UTC() }

// Sleep waits d of real time or until ctx ends.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Virtual is a simulated clock: Sleep advances it at once. It is safe for concurrent use; when
// several goroutines sleep, each advances the clock by its own duration from the time it observed,
// and the clock never goes backwards.
type Virtual struct {
	mu  sync.Mutex
	now time.Time
}

// NewVirtual returns a virtual clock that starts at start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start.UTC()} }

// Now returns the simulated time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// Sleep advances the simulated time by d.
func (v *Virtual) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		v.Advance(d)
	}
	return nil
}

// Advance moves the simulated time forward by d.
func (v *Virtual) Advance(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.now = v.now.Add(d)
}

// Set moves the simulated time to t if t is later than now.
func (v *Virtual) Set(t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if t.After(v.now) {
		v.now = t.UTC()
	}
}
