package server_test

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/trailproof/trailproof/internal/emulator"
)

// arrivals records when each call reached the emulator, to measure how evenly the server's
// paced calls arrive.
type arrivals struct {
	mu       sync.Mutex
	ts       []time.Time
	byBudget map[string][]time.Time // per access key and region: one rate budget each
	h        http.Handler
}

// scope is the access key and region of a SigV4 Authorization header's credential.
var scope = regexp.MustCompile(`Credential=([^/]+)/[^/]+/([^/]+)/`)

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	a.mu.Lock()
	a.ts = append(a.ts, now)
	// LookupEvents calls only: the rate budget is theirs (sts:GetCallerIdentity is not under it).
	if m := scope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil && strings.HasSuffix(r.Header.Get("X-Amz-Target"), emulator.Target) {
		if a.byBudget == nil {
			a.byBudget = map[string][]time.Time{}
		}
		a.byBudget[m[1]+" "+m[2]] = append(a.byBudget[m[1]+" "+m[2]], now)
	}
	a.mu.Unlock()
	a.h.ServeHTTP(w, r)
}

// maxIn returns, per rate budget (access key and region), the most calls that arrived within any
// window of length w.
func (a *arrivals) maxIn(w time.Duration) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for k, ts := range a.byBudget {
		ts = append([]time.Time{}, ts...)
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		first := 0
		for i := range ts {
			for ts[i].Sub(ts[first]) >= w {
				first++
			}
			out[k] = max(out[k], i-first+1)
		}
	}
	return out
}

// gaps returns the shortest time between two consecutive arrivals and across three.
func (a *arrivals) gaps() (min1, min2 time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := append([]time.Time{}, a.ts...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	min1, min2 = time.Hour, time.Hour
	for i := 1; i < len(ts); i++ {
		min1 = min(min1, ts[i].Sub(ts[i-1]))
		if i >= 2 {
			min2 = min(min2, ts[i].Sub(ts[i-2]))
		}
	}
	return
}
