// Package bolt is the core.Store of the local binary: one bbolt file, no server.
//
// Layout (top-level buckets):
//
//	integrations  id -> JSON seal.SealedIntegration (settings redacted, secrets AES-GCM sealed)
//	runs          id -> JSON of the run without its result lists (what ListRuns scans)
//	results       id -> gzip'd JSON of the run's events, alerts and suspicious events
//	raw           partition -> { "t": <eventTime>#<eventId> -> JSON RawEvent,
//	                             "id": eventId -> <eventTime>#<eventId> }
//
// Every method is one bbolt transaction, so a crash never leaves half a write behind. The sealing
// key lives in a key file beside the database (path + ".key" unless WithKeyFile says otherwise),
// created with mode 0600; the database file itself never holds a secret in plain text.
package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/internal/enc"
	"github.com/trailproof/trailproof/internal/store/seal"
)

var (
	bucketIntegrations = []byte("integrations")
	bucketRuns         = []byte("runs")
	bucketResults      = []byte("results")
	bucketRaw          = []byte("raw")
	bucketRawByTime    = []byte("t")
	bucketRawByID      = []byte("id")
)

// Store is a core.Store in a bbolt file. It is safe for concurrent use within one process; a
// second process opening the same file waits for the lock (see WithLockTimeout).
type Store struct {
	db     *bolt.DB
	sealer seal.Sealer
}

var _ core.Store = (*Store)(nil)

type options struct {
	keyFile     string
	sealer      seal.Sealer
	lockTimeout time.Duration
}

// Option configures Open.
type Option func(*options)

// WithKeyFile keeps the sealing key at path instead of beside the database.
func WithKeyFile(path string) Option { return func(o *options) { o.keyFile = path } }

// WithSealer seals secrets with s instead of an AES-GCM key from a key file.
func WithSealer(s seal.Sealer) Option { return func(o *options) { o.sealer = s } }

// WithLockTimeout bounds how long Open waits for another process to release the file (default
// 1 s), so a second `trailproof serve` on the same data folder fails instead of hanging.
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// Open opens (creating when absent) the database at path and its key file.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{keyFile: path + ".key", lockTimeout: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.sealer == nil {
		key, err := seal.LoadOrCreateKey(o.keyFile)
		if err != nil {
			return nil, err
		}
		if o.sealer, err = seal.NewAESGCM(key); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: the file is locked by another process (is another trailproof using this data folder?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIntegrations, bucketRuns, bucketResults, bucketRaw} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	return &Store{db: db, sealer: o.sealer}, nil
}

// Close releases the file.
func (s *Store) Close() error { return s.db.Close() }

func notFound(what, id string) error { return core.Errorf(core.ENOTFOUND, "%s %q not found", what, id) }

// CreateIntegration stores a new integration; ECONFLICT when the ID exists.
func (s *Store) CreateIntegration(ctx context.Context, in *core.Integration) error {
	return s.putIntegration(ctx, in, true)
}

// UpdateIntegration replaces an integration; ENOTFOUND when absent.
func (s *Store) UpdateIntegration(ctx context.Context, in *core.Integration) error {
	return s.putIntegration(ctx, in, false)
}

func (s *Store) putIntegration(ctx context.Context, in *core.Integration, create bool) error {
	if in.ID == "" {
		return core.FieldError("id", "an integration needs an ID")
	}
	// Seal outside the transaction: a KMS sealer makes a network call.
	sealed, err := seal.SealIntegration(ctx, s.sealer, in)
	if err != nil {
		return err
	}
	val, err := json.Marshal(sealed)
	if err != nil {
		return fmt.Errorf("encode integration %s: %w", in.ID, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIntegrations)
		exists := b.Get([]byte(in.ID)) != nil
		if create && exists {
			return core.Errorf(core.ECONFLICT, "integration %q already exists", in.ID)
		}
		if !create && !exists {
			return notFound("integration", in.ID)
		}
		return b.Put([]byte(in.ID), val)
	})
}

// GetIntegration returns the integration with its secrets; ENOTFOUND when absent.
func (s *Store) GetIntegration(ctx context.Context, id string) (*core.Integration, error) {
	var sealed seal.SealedIntegration
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIntegrations).Get([]byte(id))
		if v == nil {
			return notFound("integration", id)
		}
		return json.Unmarshal(v, &sealed)
	})
	if err != nil {
		return nil, fmt.Errorf("get integration %s: %w", id, err)
	}
	return sealed.Integration(ctx, s.sealer, id, true)
}

// ListIntegrations returns every integration, secrets redacted, ordered by ID.
func (s *Store) ListIntegrations(ctx context.Context) ([]*core.Integration, error) {
	var out []*core.Integration
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIntegrations).ForEach(func(k, v []byte) error {
			var sealed seal.SealedIntegration
			if err := json.Unmarshal(v, &sealed); err != nil {
				return fmt.Errorf("integration %s: %w", k, err)
			}
			in, err := sealed.Integration(ctx, s.sealer, string(k), false)
			if err != nil {
				return err
			}
			out = append(out, in)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return out, nil
}

// DeleteIntegration removes an integration; ENOTFOUND when absent.
func (s *Store) DeleteIntegration(_ context.Context, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIntegrations)
		if b.Get([]byte(id)) == nil {
			return notFound("integration", id)
		}
		// In the same transaction as the delete: a run cannot be created in between.
		if run, err := activeRunOf(tx, id); err != nil || run != nil {
			if err != nil {
				return err
			}
			return core.ActiveRunConflict(id, run)
		}
		return b.Delete([]byte(id))
	})
}

// activeRunOf returns a waiting or querying run of the integration, or nil when it has none.
func activeRunOf(tx *bolt.Tx, integrationID string) (*core.Run, error) {
	var found *core.Run
	err := tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
		var r core.Run
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode run %s: %w", k, err)
		}
		if r.IntegrationID == integrationID && !core.Ended(r.Status) {
			found = &r
			return errStop
		}
		return nil
	})
	if err == errStop {
		err = nil
	}
	return found, err
}

// errStop ends a ForEach early.
var errStop = errors.New("stop")

// CreateRun stores a new run with Version 1; ECONFLICT when the run ID exists, ENOTFOUND when
// its integration does not.
func (s *Store) CreateRun(_ context.Context, r *core.Run) error {
	if r.RunID == "" {
		return core.FieldError("runId", "a run needs an ID")
	}
	stored := *r
	stored.Version = 1
	summary, packed, err := encodeRun(&stored)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		if runs.Get([]byte(r.RunID)) != nil {
			return core.Errorf(core.ECONFLICT, "run %q already exists", r.RunID)
		}
		if tx.Bucket(bucketIntegrations).Get([]byte(r.IntegrationID)) == nil {
			return notFound("integration", r.IntegrationID)
		}
		if err := runs.Put([]byte(r.RunID), summary); err != nil {
			return err
		}
		return tx.Bucket(bucketResults).Put([]byte(r.RunID), packed.Gzip)
	})
	if err != nil {
		return fmt.Errorf("create run %s: %w", r.RunID, err)
	}
	r.Version = 1
	return nil
}

func encodeRun(r *core.Run) ([]byte, enc.Packed, error) {
	summary, results := enc.Split(r)
	b, err := json.Marshal(summary)
	if err != nil {
		return nil, enc.Packed{}, fmt.Errorf("encode run %s: %w", r.RunID, err)
	}
	packed, err := results.Pack()
	return b, packed, err
}

// GetRun returns the run, result lists included; ENOTFOUND when absent.
func (s *Store) GetRun(_ context.Context, id string) (*core.Run, error) {
	var summary, results []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get([]byte(id))
		if v == nil {
			return notFound("run", id)
		}
		summary = bytes.Clone(v)
		results = bytes.Clone(tx.Bucket(bucketResults).Get([]byte(id)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", id, err)
	}
	r := new(core.Run)
	if err := json.Unmarshal(summary, r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", id, err)
	}
	r.Upgrade()
	if results != nil {
		res, err := enc.UnpackResults(results)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", id, err)
		}
		res.Join(r)
	}
	return r, nil
}

// UpdateRun replaces the run if its stored Version equals r.Version, then increments r.Version;
// ECONFLICT (and nothing written) when another writer got there first.
func (s *Store) UpdateRun(_ context.Context, r *core.Run) error {
	stored := *r
	stored.Version = r.Version + 1
	summary, packed, err := encodeRun(&stored)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		v := runs.Get([]byte(r.RunID))
		if v == nil {
			return notFound("run", r.RunID)
		}
		var cur struct {
			Version int64 `json:"version"`
		}
		if err := json.Unmarshal(v, &cur); err != nil {
			return fmt.Errorf("decode stored run: %w", err)
		}
		if cur.Version != r.Version {
			return core.Errorf(core.ECONFLICT, "run %q changed concurrently (stored version %d, yours %d)", r.RunID, cur.Version, r.Version)
		}
		if err := runs.Put([]byte(r.RunID), summary); err != nil {
			return err
		}
		return tx.Bucket(bucketResults).Put([]byte(r.RunID), packed.Gzip)
	})
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.RunID, err)
	}
	r.Version = stored.Version
	return nil
}

// ListRuns returns the runs whose status is one of statuses (all when none is given), ordered by
// run ID. They come without their result lists (Events, Alerts, Suspicious are nil): callers that
// need them read the run with GetRun.
func (s *Store) ListRuns(_ context.Context, statuses ...string) ([]*core.Run, error) {
	var out []*core.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			r := new(core.Run)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("decode run %s: %w", k, err)
			}
			r.Upgrade()
			if len(statuses) == 0 || slices.Contains(statuses, r.Status) {
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// AddRawEvents stores events under a partition, keeping the first version of each EventID, and
// returns how many were new. All or nothing: one transaction.
func (s *Store) AddRawEvents(_ context.Context, partition string, evs []core.RawEvent) (int, error) {
	evs, err := enc.CheckRaw(partition, evs)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	added := 0
	err = s.db.Update(func(tx *bolt.Tx) error {
		part, err := tx.Bucket(bucketRaw).CreateBucketIfNotExists([]byte(partition))
		if err != nil {
			return err
		}
		byTime, err := part.CreateBucketIfNotExists(bucketRawByTime)
		if err != nil {
			return err
		}
		byID, err := part.CreateBucketIfNotExists(bucketRawByID)
		if err != nil {
			return err
		}
		added = 0
		for _, ev := range evs {
			if byID.Get([]byte(ev.EventID)) != nil {
				continue
			}
			val, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("encode raw event %s: %w", ev.EventID, err)
			}
			key := []byte(enc.RawKey(ev))
			if err := byTime.Put(key, val); err != nil {
				return err
			}
			if err := byID.Put([]byte(ev.EventID), key); err != nil {
				return err
			}
			added++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("add raw events to %s: %w", partition, err)
	}
	return added, nil
}

// rawPage is how many raw events one read transaction takes: the transaction ends before they
// are handed on, so a slow reader neither holds one open nor makes the file grow meanwhile.
const rawPage = 256

// RawEvents visits the partition's events whose EventTime is in [from, to], oldest first (then
// by EventID), rawPage at a time. Zero times leave that end open.
func (s *Store) RawEvents(_ context.Context, partition string, from, to time.Time) iter.Seq2[core.RawEvent, error] {
	return func(yield func(core.RawEvent, error) bool) {
		start := []byte{}
		if !from.IsZero() {
			start = []byte(enc.TimeKey(from))
		}
		var limit []byte
		if !to.IsZero() {
			limit = []byte(enc.RawKeyAfter(to))
		}
		for start != nil {
			var page [][]byte
			var keys []string
			err := s.db.View(func(tx *bolt.Tx) error {
				part := tx.Bucket(bucketRaw).Bucket([]byte(partition))
				if part == nil {
					start = nil
					return nil
				}
				c := part.Bucket(bucketRawByTime).Cursor()
				k, v := c.Seek(start)
				for ; k != nil && len(page) < rawPage; k, v = c.Next() {
					if limit != nil && bytes.Compare(k, limit) >= 0 {
						break
					}
					page, keys = append(page, bytes.Clone(v)), append(keys, string(k))
				}
				start = nil
				if k != nil && len(page) == rawPage {
					start = bytes.Clone(k) // the first key not taken: the next page starts there
				}
				return nil
			})
			if err != nil {
				yield(core.RawEvent{}, fmt.Errorf("read raw events of %s: %w", partition, err))
				return
			}
			for i, v := range page {
				ev, err := enc.DecodeRaw(v)
				if err != nil {
					err = fmt.Errorf("read raw events of %s: decode raw event %s: %w", partition, keys[i], err)
				}
				if !yield(ev, err) || err != nil {
					return
				}
			}
		}
	}
}
