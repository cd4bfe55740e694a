package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoAPI is the part of *dynamodb.Client a Dynamo bucket uses.
type DynamoAPI interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// Dynamo is a Limiter shared by every process that can reach one DynamoDB table: a token bucket
// item per key, in the store's table (string keys PK and SK):
//
//	PK             SK      attributes
//	RATE#<key>     BUCKET  "tokens" (N, may be negative: reserved calls not yet due),
//	                       "at" (N, Unix nanoseconds the tokens were counted at), "v" (N, version),
//	                       "ttl" (N, epoch seconds: an idle bucket is deleted a day later)
//
// Reserve reads the item, refills it for the time elapsed, takes a token and writes it back
// with a PutItem conditional on the version it read; when another taker got there first it reads
// again. The lambda role needs dynamodb:GetItem and dynamodb:PutItem on the table.
type Dynamo struct {
	db       DynamoAPI
	table    string
	rate     float64
	burst    float64
	attempts int
	wall     func() time.Time
}

var _ Limiter = (*Dynamo)(nil)

// NewDynamo returns a bucket of perSecond calls per key (bursts of burst) in table.
func NewDynamo(db DynamoAPI, table string, perSecond float64, burst int) (*Dynamo, error) {
	if table == "" || db == nil {
		return nil, errors.New("ratelimit: a DynamoDB client and table are required")
	}
	if perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return nil, fmt.Errorf("ratelimit: the rate must be a positive number of calls per second, got %v", perSecond)
	}
	return &Dynamo{db: db, table: table, rate: perSecond, burst: float64(max(burst, 1)), attempts: 100, wall: time.Now}, nil
}

func bucketKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "RATE#" + key},
		"SK": &types.AttributeValueMemberS{Value: "BUCKET"},
	}
}

func num(item map[string]types.AttributeValue, name string) (float64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Value, 64)
	return f, err == nil
}

func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

// Reserve takes one call from key's bucket at now and says how long to wait before making it.
func (d *Dynamo) Reserve(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	for attempt := 0; attempt < d.attempts; attempt++ {
		out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: bucketKey(key), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return 0, fmt.Errorf("read bucket: %w", err)
		}
		tokens, at, version := d.burst, now, int64(0)
		if out.Item != nil {
			t, ok1 := num(out.Item, "tokens")
			a, ok2 := num(out.Item, "at")
			v, ok3 := num(out.Item, "v")
			if !ok1 || !ok2 || !ok3 {
				return 0, fmt.Errorf("bucket %s is malformed", key)
			}
			tokens, at, version = t, time.Unix(0, int64(a)), int64(v)
		}
		// Another process's clock may be ahead: never count time twice, never go back.
		if now.After(at) {
			tokens = math.Min(d.burst, tokens+now.Sub(at).Seconds()*d.rate)
			at = now
		}
		tokens--
		var wait time.Duration
		if tokens < 0 {
			wait = at.Sub(now) + time.Duration(-tokens/d.rate*float64(time.Second))
		}
		item := bucketKey(key)
		item["tokens"] = n(strconv.FormatFloat(tokens, 'f', -1, 64))
		item["at"] = n(strconv.FormatInt(at.UnixNano(), 10))
		item["v"] = n(strconv.FormatInt(version+1, 10))
		item["ttl"] = n(strconv.FormatInt(d.wall().Add(24*time.Hour).Unix(), 10))
		in := &dynamodb.PutItemInput{TableName: &d.table, Item: item}
		if version == 0 {
			in.ConditionExpression = aws.String("attribute_not_exists(PK)")
		} else {
			in.ConditionExpression = aws.String("v = :v")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": n(strconv.FormatInt(version, 10))}
		}
		_, err = d.db.PutItem(ctx, in)
		if err == nil {
			return wait, nil
		}
		var cf *types.ConditionalCheckFailedException
		if !errors.As(err, &cf) {
			return 0, fmt.Errorf("update bucket: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("bucket %s: still contended after %d attempts", key, d.attempts)
}
