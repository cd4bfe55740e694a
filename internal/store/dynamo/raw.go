package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/internal/enc"
)

// Raw events.

func rawPK(partition string) string   { return "RAW#" + partition }
func rawIDPK(partition string) string { return "RAWID#" + partition }

// AddRawEvents stores events under a partition, keeping the first version of each EventID, and
// returns how many were new. See the package doc for why a repeat after a crash is safe.
func (s *Store) AddRawEvents(ctx context.Context, partition string, evs []core.RawEvent) (int, error) {
	evs, err := enc.CheckRaw(partition, evs)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	known, err := s.knownIDs(ctx, partition, evs)
	if err != nil {
		return 0, fmt.Errorf("add raw events to %s: %w", partition, err)
	}
	now := s.now()
	var events, ids []types.WriteRequest
	for _, ev := range evs {
		if known[ev.EventID] {
			continue
		}
		item, err := rawItem(partition, ev)
		if err != nil {
			return 0, err
		}
		item[AttrTTL] = attrN(s.ttl(now))
		events = append(events, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		idItem := key(rawIDPK(partition), ev.EventID)
		idItem["key"] = attrS(enc.RawKey(ev))
		idItem[AttrTTL] = attrN(s.ttl(now))
		ids = append(ids, types.WriteRequest{PutRequest: &types.PutRequest{Item: idItem}})
	}
	if err := s.batchWrite(ctx, events); err != nil {
		return 0, fmt.Errorf("add raw events to %s: %w", partition, err)
	}
	if err := s.batchWrite(ctx, ids); err != nil {
		return 0, fmt.Errorf("add raw events to %s: index: %w", partition, err)
	}
	return len(events), nil
}

func rawItem(partition string, ev core.RawEvent) (map[string]types.AttributeValue, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode raw event %s: %w", ev.EventID, err)
	}
	item := key(rawPK(partition), enc.RawKey(ev))
	if len(b) <= rawGzipAbove {
		item["ev"] = attrS(string(b))
		return item, nil
	}
	z, err := enc.Gzip(b)
	if err != nil {
		return nil, fmt.Errorf("compress raw event %s: %w", ev.EventID, err)
	}
	if len(z) > maxItem {
		return nil, core.Errorf(core.ETOOLARGE, "raw event %s takes %d bytes compressed, over the %d a store item allows", ev.EventID, len(z), maxItem)
	}
	item["evz"] = attrB(z)
	return item, nil
}

// knownIDs returns which of evs' IDs the partition's index holds.
func (s *Store) knownIDs(ctx context.Context, partition string, evs []core.RawEvent) (map[string]bool, error) {
	known := map[string]bool{}
	for batch := range slices.Chunk(evs, batchGetMax) {
		keys := make([]map[string]types.AttributeValue, len(batch))
		for i, ev := range batch {
			keys[i] = key(rawIDPK(partition), ev.EventID)
		}
		req := map[string]types.KeysAndAttributes{s.table: {
			Keys: keys, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String(AttrSK)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt == maxAttempts {
					return nil, fmt.Errorf("BatchGetItem: keys still unprocessed after %d attempts", maxAttempts)
				}
				if err := s.backoff(ctx, attempt-1); err != nil {
					return nil, err
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("read raw-event index: %w", err)
			}
			for _, item := range out.Responses[s.table] {
				known[getS(item, AttrSK)] = true
			}
			req = out.UnprocessedKeys
		}
	}
	return known, nil
}

// batchWrite applies reqs in BatchWriteItem calls of 25, retrying unprocessed items with backoff.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for batch := range slices.Chunk(reqs, batchWriteMax) {
		pending := map[string][]types.WriteRequest{s.table: batch}
		for attempt := 0; len(pending[s.table]) > 0; attempt++ {
			if attempt > 0 {
				if attempt == maxAttempts {
					return fmt.Errorf("BatchWriteItem: %d items still unprocessed after %d attempts", len(pending[s.table]), maxAttempts)
				}
				if err := s.backoff(ctx, attempt-1); err != nil {
					return err
				}
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return err
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

// RawEvents visits the partition's events whose EventTime is in [from, to], oldest first (then
// by EventID), one Query page (at most 1 MB) at a time. Zero times leave that end open.
func (s *Store) RawEvents(ctx context.Context, partition string, from, to time.Time) iter.Seq2[core.RawEvent, error] {
	return func(yield func(core.RawEvent, error) bool) {
		cond := "PK = :pk"
		values := map[string]types.AttributeValue{":pk": attrS(rawPK(partition))}
		switch {
		case !from.IsZero() && !to.IsZero():
			if from.After(to) {
				return
			}
			cond += " AND SK BETWEEN :from AND :to"
			values[":from"], values[":to"] = attrS(enc.TimeKey(from)), attrS(enc.RawKeyAfter(to))
		case !from.IsZero():
			cond += " AND SK >= :from"
			values[":from"] = attrS(enc.TimeKey(from))
		case !to.IsZero():
			cond += " AND SK < :to"
			values[":to"] = attrS(enc.RawKeyAfter(to))
		}
		stopped := errors.New("stopped")
		err := s.query(ctx, &dynamodb.QueryInput{
			KeyConditionExpression: aws.String(cond), ExpressionAttributeValues: values, ConsistentRead: aws.Bool(true),
		}, func(item map[string]types.AttributeValue) error {
			b := []byte(getS(item, "ev"))
			if z := getB(item, "evz"); z != nil {
				var err error
				if b, err = enc.Gunzip(z); err != nil {
					return fmt.Errorf("decompress raw event %s: %w", getS(item, AttrSK), err)
				}
			}
			ev, err := enc.DecodeRaw(b)
			if err != nil {
				return fmt.Errorf("decode raw event %s: %w", getS(item, AttrSK), err)
			}
			if !yield(ev, nil) {
				return stopped
			}
			return nil
		})
		if err != nil && !errors.Is(err, stopped) {
			yield(core.RawEvent{}, fmt.Errorf("read raw events of %s: %w", partition, err))
		}
	}
}
