package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// progressView shows a real-clock run's progress on stderr: a run against real CloudTrail waits
// minutes between queries, and a person must see that it is alive and what it has found. On a
// terminal it is one live line, redrawn every second with the countdown to the next query; off a
// terminal (a log file, CI) it is one line per query. A failure the run retries is shown at once.
type progressView struct {
	w   io.Writer
	tty bool
	now func() time.Time

	mu    sync.Mutex
	state string    // the run's counters, without the countdown
	next  time.Time // when the next query is due
	drawn bool      // a live line is on screen
	done  chan struct{}
	wg    sync.WaitGroup
}

// isTerminal reports whether w is a character device (a terminal), without a dependency.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newProgressView(w io.Writer, tty bool) *progressView {
	p := &progressView{w: w, tty: tty, now: time.Now, done: make(chan struct{})}
	if tty {
		p.wg.Add(1)
		go p.tick()
	}
	return p
}

// update is workflow.Progress: told before each wait what the run has done and how long it waits.
func (p *progressView) update(r *core.Run, next time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	window := r.Window.From.Format(time.RFC3339) + " .. " + r.Window.To.Format(time.RFC3339)
	if r.Queries == 0 {
		p.state = "waiting for the first query (delayTime); window " + window
	} else {
		p.state = fmt.Sprintf("query %d done; window %s; %d events examined, %d matched, %d LookupEvents calls, %d throttled",
			r.Queries, window, r.Progress.RawEvents, len(r.Events), r.APICalls, r.Throttled)
	}
	p.next = p.now().Add(next)
	if p.tty {
		p.draw()
		return
	}
	fmt.Fprintf(p.w, "%s  %s; next query in %s\n", p.now().UTC().Format(time.TimeOnly), p.state, next.Round(time.Second))
}

// failure shows a failure the run is retrying, at once and on its own line.
func (p *progressView) failure(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintf(p.w, "%s  %s\n", p.now().UTC().Format(time.TimeOnly), msg)
	if p.tty && p.state != "" {
		p.draw()
	}
}

// draw rewrites the live line; p.mu is held.
func (p *progressView) draw() {
	wait := max(p.next.Sub(p.now()), 0).Round(time.Second)
	line := p.state
	if wait > 0 {
		line += fmt.Sprintf("; next query in %s", wait)
	} else {
		line += "; querying"
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progressView) tick() {
	defer p.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.mu.Lock()
			if p.state != "" {
				p.draw()
			}
			p.mu.Unlock()
		}
	}
}

// close ends the live line so the result starts on a fresh one.
func (p *progressView) close() {
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// failureHandler is a slog.Handler that shows the warnings of the workflow and the CloudTrail
// source (a step or a call that failed and is retried) on the progress view.
type failureHandler struct {
	view  *progressView
	attrs []slog.Attr
}

func (h failureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h failureHandler) Handle(_ context.Context, r slog.Record) error {
	var parts []string
	add := func(a slog.Attr) bool {
		switch a.Key {
		case "error", "code", "region", "attempt", "delay":
			parts = append(parts, a.Key+"="+a.Value.String())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.view.failure(r.Message + ": " + strings.Join(parts, " "))
	return nil
}

func (h failureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return failureHandler{view: h.view, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h failureHandler) WithGroup(string) slog.Handler { return h }
