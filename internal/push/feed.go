package push

import (
	"context"
	"fmt"
	"hash/fnv"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/core"
)

// Feed simulates EventBridge for a corpus (`run --corpus --push-delay D --push-loss P`): each
// record is pushed at its eventTime + Delay on the run's clock, through Decode and Ingest like a
// real push, except a fraction Loss of them (chosen per EventId, so the same ones every time)
// that best-effort delivery drops.
type Feed struct {
	Delay time.Duration
	Loss  float64

	mu      sync.Mutex
	pending []due // by due time
}

type due struct {
	at       time.Time
	envelope []byte
}

// NewFeed returns a feed of the records, each pushed delay after its eventTime from the account
// and region place says (a record without an account is not pushed), losing the fraction loss
// (0 to 1).
func NewFeed(records []core.RawEvent, place func(core.RawEvent) (account, region string), delay time.Duration, loss float64) (*Feed, error) {
	if delay < 0 {
		return nil, &core.Error{Code: core.EINVALID, Field: "pushDelay", Message: fmt.Sprintf("%s is negative", delay)}
	}
	if loss < 0 || loss > 1 {
		return nil, &core.Error{Code: core.EINVALID, Field: "pushLoss", Message: fmt.Sprintf("%g is not a fraction between 0 and 1", loss)}
	}
	f := &Feed{Delay: delay, Loss: loss}
	for _, r := range records {
		account, region := place(r)
		if account == "" || Lost(r.EventID, loss) {
			continue
		}
		r.Region = region
		b, err := EnvelopeOf(r, account)
		if err != nil {
			return nil, err
		}
		f.pending = append(f.pending, due{at: r.EventTime.Add(delay), envelope: b})
	}
	slices.SortStableFunc(f.pending, func(a, b due) int { return a.at.Compare(b.at) })
	return f, nil
}

// Lost says whether the push of eventID is one of the fraction loss that are dropped.
func Lost(eventID string, loss float64) bool {
	if loss <= 0 {
		return false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("push-loss#" + eventID))
	return float64(h.Sum64()>>11)/(1<<53) < loss
}

// Due removes and returns the envelopes of the records due at or before now, oldest first.
func (f *Feed) Due(now time.Time) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.peek(now)
	f.pending = f.pending[len(out):]
	return out
}

// Len is the number of records still to push.
func (f *Feed) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// peek returns the envelopes due at or before now; the caller holds mu.
func (f *Feed) peek(now time.Time) [][]byte {
	var out [][]byte
	for _, d := range f.pending {
		if d.at.After(now) {
			break
		}
		out = append(out, d.envelope)
	}
	return out
}

// Deliver ingests every record due at or before now. A record the store could not take stays
// due, for the next delivery.
func (f *Feed) Deliver(ctx context.Context, st Adder, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	batch := f.peek(now)
	if len(batch) == 0 {
		return nil
	}
	for _, err := range Ingest(ctx, st, batch) {
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	f.pending = f.pending[len(batch):]
	return nil
}

// Store is a core.Store fed by a Feed: before any read of raw events it delivers what is due on
// its clock, so a run sees each pushed record from its due time on, as if EventBridge had
// delivered it then.
type Store struct {
	core.Store
	Feed *Feed
	Now  func() time.Time
}

// RawEvents delivers what is due, then reads.
func (s *Store) RawEvents(ctx context.Context, partition string, from, to time.Time) iter.Seq2[core.RawEvent, error] {
	return func(yield func(core.RawEvent, error) bool) {
		if err := s.Feed.Deliver(ctx, s.Store, s.Now()); err != nil {
			yield(core.RawEvent{}, err)
			return
		}
		for ev, err := range s.Store.RawEvents(ctx, partition, from, to) {
			if !yield(ev, err) {
				return
			}
		}
	}
}

// AccountOf is the account a record belongs to (recipientAccountId, else the caller's account):
// the account whose default bus EventBridge would deliver it on.
func AccountOf(r core.RawEvent) string {
	if a := gjson.GetBytes(r.Record, "recipientAccountId").String(); a != "" {
		return a
	}
	return gjson.GetBytes(r.Record, "userIdentity.accountId").String()
}
