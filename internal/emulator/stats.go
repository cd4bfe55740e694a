package emulator

import "time"

// KeyRegion is the unit LookupEvents' rate limit applies to: the caller's access key and the
// region the call was signed for.
type KeyRegion struct {
	AccessKeyID string
	Region      string
}

// KeyStats counts one access key and region's calls.
type KeyStats struct {
	Calls     int // every call, refused ones included
	Throttled int // ThrottlingException answers, rate limit and injected
	// MaxPerSecond is the most calls seen in any one second of the emulator's clock (calls less
	// than a second apart), the figure to hold against the 2 calls per second budget.
	MaxPerSecond int
}

// Stats counts what the emulator was asked and how it answered, for tests and benchmarks.
type Stats struct {
	Calls          int // every call that reached the emulator
	Served         int // calls answered with a page of events
	Rejected       int // calls refused for bad input or credentials (4xx other than throttling)
	ThrottledRate  int // ThrottlingException because the rate limit was exceeded
	ThrottledFault int // ThrottlingException injected by the throttle fault
	Errors         int // HTTP 500 InternalFailure injected by the error fault
	Duplicates     int // pages that repeated an event of the previous page (dup fault)
	CallerIdentity int // sts:GetCallerIdentity calls answered (sts.go)
	PerKey         map[KeyRegion]KeyStats
}

// keyStats returns the counters of kr for update; e.mu is held.
func (e *Emulator) keyStats(kr KeyRegion) *KeyStats {
	ks, ok := e.perKey[kr]
	if !ok {
		ks = &KeyStats{}
		e.perKey[kr] = ks
	}
	return ks
}

// Stats returns a copy of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.PerKey = make(map[KeyRegion]KeyStats, len(e.perKey))
	for k, v := range e.perKey {
		s.PerKey[k] = *v
	}
	return s
}

// ResetStats zeroes the counters (not the rate limiters), between phases of a benchmark.
func (e *Emulator) ResetStats() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats = Stats{}
	e.perKey = map[KeyRegion]*KeyStats{}
	e.recent = map[KeyRegion][]time.Time{}
}
