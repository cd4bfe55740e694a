package server_test

import (
	"net/http"
	"sort"
	"sync"
	"time"
)

// arrivals records when each call reached the emulator, to measure how evenly the server's
// paced calls arrive.
type arrivals struct {
	mu sync.Mutex
	ts []time.Time
	h  http.Handler
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.ts = append(a.ts, time.Now())
	a.mu.Unlock()
	a.h.ServeHTTP(w, r)
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
