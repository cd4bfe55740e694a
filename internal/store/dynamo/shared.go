package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
)

// Items of shared reads (added to the key design in the package comment):
//
//	PK                 SK       what
//	LEDGER#<stream>    LEDGER   a stream's read ledger: "ledger" (JSON core.Ledger), "version"
//	LEASE#<name>       LEASE    a lease: "holder", "expires" (Unix milliseconds on the caller's
//	                            clock), "ttl" (a day after the write, real time, for cleanup)
//
// The lease is taken with one conditional PutItem (free, expired or already ours), so two
// Lambda invocations can never both hold it; the ledger is replaced with a PutItem conditional on
// its version, like a run.
const (
	ledgerSK = "LEDGER"
	leaseSK  = "LEASE"
	// leaseCleanup is how long after its last write DynamoDB's TTL may delete a lease item. Expiry
	// itself is the "expires" attribute: TTL deletion can lag by days.
	leaseCleanup = 24 * time.Hour
)

var _ core.SharedReadStore = (*Store)(nil)

func ledgerPK(stream string) string { return "LEDGER#" + stream }
func leasePK(name string) string    { return "LEASE#" + name }

// GetLedger returns the stream's ledger, or an empty one with Version 0.
func (s *Store) GetLedger(ctx context.Context, stream string) (*core.Ledger, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(ledgerPK(stream), ledgerSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get ledger %s: %w", stream, err)
	}
	l := &core.Ledger{Stream: stream}
	if out.Item == nil {
		return l, nil
	}
	if err := json.Unmarshal([]byte(getS(out.Item, "ledger")), l); err != nil {
		return nil, fmt.Errorf("decode ledger %s: %w", stream, err)
	}
	l.Version = getN(out.Item, "version")
	return l, nil
}

// PutLedger replaces the ledger if its stored version is l.Version.
func (s *Store) PutLedger(ctx context.Context, l *core.Ledger) error {
	if l.Stream == "" {
		return core.FieldError("stream", "a ledger needs a stream")
	}
	next := *l
	next.Version = l.Version + 1
	body, err := json.Marshal(&next)
	if err != nil {
		return fmt.Errorf("encode ledger %s: %w", l.Stream, err)
	}
	if len(body) > maxItem {
		return fmt.Errorf("put ledger %s: %d bytes is more than an item holds", l.Stream, len(body))
	}
	item := key(ledgerPK(l.Stream), ledgerSK)
	item["ledger"] = attrS(string(body))
	item["version"] = attrN(next.Version)
	item[AttrTTL] = attrN(s.ttl(s.now()))
	in := &dynamodb.PutItemInput{TableName: &s.table, Item: item}
	if l.Version == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(PK)")
	} else {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeNames = map[string]string{"#v": "version"}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": attrN(l.Version)}
	}
	if _, err := s.db.PutItem(ctx, in); err != nil {
		if isConditionFailed(err) {
			return core.Errorf(core.ECONFLICT, "ledger %s changed since version %d", l.Stream, l.Version)
		}
		return fmt.Errorf("put ledger %s: %w", l.Stream, err)
	}
	l.Version = next.Version
	return nil
}

// AcquireLease takes the lease with one conditional PutItem: the item is absent, expired, or
// already the holder's.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (core.Lease, bool, error) {
	if name == "" || holder == "" {
		return core.Lease{}, false, core.FieldError("lease", "a lease needs a name and a holder")
	}
	lease := core.Lease{Name: name, Holder: holder, Expires: now.Add(ttl).UTC().Truncate(time.Millisecond)}
	item := key(leasePK(name), leaseSK)
	item["holder"] = attrS(holder)
	item["expires"] = attrN(lease.Expires.UnixMilli())
	item[AttrTTL] = attrN(s.now().Add(leaseCleanup).Unix())
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(PK) OR expires <= :now OR holder = :h"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": attrN(now.UnixMilli()), ":h": attrS(holder)},
	})
	if err == nil {
		return lease, true, nil
	}
	if !isConditionFailed(err) {
		return core.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(leasePK(name), leaseSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return core.Lease{}, false, fmt.Errorf("read lease %s: %w", name, err)
	}
	cur := core.Lease{Name: name}
	if out.Item != nil {
		cur.Holder = getS(out.Item, "holder")
		cur.Expires = time.UnixMilli(getN(out.Item, "expires")).UTC()
	}
	return cur, false, nil
}

// ReleaseLease deletes the lease item if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       key(leasePK(name), leaseSK),
		ConditionExpression:       aws.String("holder = :h"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":h": attrS(holder)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
