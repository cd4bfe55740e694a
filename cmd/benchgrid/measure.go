package main

import (
	"runtime/metrics"
	"sync"
	"syscall"
	"time"
)

// liveHeapMetric is the heap the last GC found live: what the process must hold, garbage not
// counted. It changes at each GC's end, so sampling it every few milliseconds sees every cycle.
const liveHeapMetric = "/gc/heap/live:bytes"

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: liveHeapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// cpuSeconds is the process's user plus system CPU time so far (every thread: the engine, the
// in-process emulator and the GC).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

// maxRSSMB is the process's peak resident set so far (getrusage maxrss, kilobytes on Linux).
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return round(float64(ru.Maxrss) / 1024)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// heapSampler keeps the largest live heap seen since its last reset, reading the metric on a
// ticker (it never forces a GC, which would change what it measures).
type heapSampler struct {
	mu   sync.Mutex
	peak uint64
	done chan struct{}
	wg   sync.WaitGroup
}

func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
				h.observe()
			}
		}
	}()
	return h
}

func (h *heapSampler) observe() {
	v := liveHeap()
	h.mu.Lock()
	h.peak = max(h.peak, v)
	h.mu.Unlock()
}

// reset returns the peak since the last reset (the current value included) and starts again.
func (h *heapSampler) reset() uint64 {
	h.observe()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.peak
	h.peak = 0
	return p
}

func (h *heapSampler) stop() {
	close(h.done)
	h.wg.Wait()
}
