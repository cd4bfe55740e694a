package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/trailproof/trailproof/internal/core"
)

// Buckets of shared reads (created on first write):
//
//	ledgers  stream -> JSON core.Ledger
//	leases   name   -> JSON core.Lease
var (
	bucketLedgers = []byte("ledgers")
	bucketLeases  = []byte("leases")
)

var _ core.SharedReadStore = (*Store)(nil)

// GetLedger returns the stream's ledger, or an empty one with Version 0.
func (s *Store) GetLedger(_ context.Context, stream string) (*core.Ledger, error) {
	l := &core.Ledger{Stream: stream}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLedgers)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(stream))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, l)
	})
	if err != nil {
		return nil, fmt.Errorf("get ledger %s: %w", stream, err)
	}
	return l, nil
}

// PutLedger stores l if the stored version is l.Version, in one transaction.
func (s *Store) PutLedger(_ context.Context, l *core.Ledger) error {
	if l.Stream == "" {
		return core.FieldError("stream", "a ledger needs a stream")
	}
	next := *l
	next.Version = l.Version + 1
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketLedgers)
		if err != nil {
			return err
		}
		var stored core.Ledger
		if v := b.Get([]byte(l.Stream)); v != nil {
			if err := json.Unmarshal(v, &stored); err != nil {
				return fmt.Errorf("decode ledger: %w", err)
			}
		}
		if stored.Version != l.Version {
			return core.Errorf(core.ECONFLICT, "ledger %s changed (version %d, not %d)", l.Stream, stored.Version, l.Version)
		}
		val, err := json.Marshal(&next)
		if err != nil {
			return err
		}
		return b.Put([]byte(l.Stream), val)
	})
	if err != nil {
		if core.ErrorCode(err) == core.ECONFLICT {
			return err
		}
		return fmt.Errorf("put ledger %s: %w", l.Stream, err)
	}
	l.Version = next.Version
	return nil
}

// AcquireLease takes the lease in one transaction: the check and the write cannot interleave with
// another caller's.
func (s *Store) AcquireLease(_ context.Context, name, holder string, now time.Time, ttl time.Duration) (core.Lease, bool, error) {
	if name == "" || holder == "" {
		return core.Lease{}, false, core.FieldError("lease", "a lease needs a name and a holder")
	}
	var out core.Lease
	held := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketLeases)
		if err != nil {
			return err
		}
		if v := b.Get([]byte(name)); v != nil {
			var cur core.Lease
			if err := json.Unmarshal(v, &cur); err != nil {
				return fmt.Errorf("decode lease: %w", err)
			}
			if cur.Holder != holder && cur.Expires.After(now) {
				out = cur
				return nil
			}
		}
		out = core.Lease{Name: name, Holder: holder, Expires: now.Add(ttl).UTC()}
		held = true
		val, err := json.Marshal(&out)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), val)
	})
	if err != nil {
		return core.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return out, held, nil
}

// ReleaseLease deletes the lease if holder has it.
func (s *Store) ReleaseLease(_ context.Context, name, holder string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLeases)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		var cur core.Lease
		if err := json.Unmarshal(v, &cur); err != nil {
			return fmt.Errorf("decode lease: %w", err)
		}
		if cur.Holder != holder {
			return nil
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
