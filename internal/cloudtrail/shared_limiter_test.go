package cloudtrail

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/ratelimit"
)

// TestSharedLimiter: two Factories (two processes, two Lambda containers) of one account and
// region stay under the budget together through the shared limiter; without it, each would
// spend the whole budget on its own.
func TestSharedLimiter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shared  bool
		advance time.Duration
	}{
		{"shared budget", true, 4500 * time.Millisecond},
		{"separate budgets", false, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			fake := &fakeCloudTrail{t: t, clk: clk, answer: paged(makeEvents(1))}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			var opts []Option
			if tc.shared {
				opts = append(opts, WithSharedLimiter(ratelimit.NewLocal(2, 1)))
			}
			a, b := testFactory(clk, opts...), testFactory(clk, opts...)
			srcA, srcB := mustSource(t, a, integration(srv.URL)), mustSource(t, b, integration(srv.URL))
			for range 5 {
				for _, src := range []core.Source{srcA, srcB} {
					if _, err := src.Lookup(context.Background(), core.Query{Region: testRegion}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got := clk.Now().Sub(t0); got != tc.advance {
				t.Errorf("10 calls took %s of clock, want %s", got, tc.advance)
			}
		})
	}
}
