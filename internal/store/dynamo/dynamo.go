// Package dynamo is the core.Store of the serverless deployment: one DynamoDB table, on-demand.
//
// # Key design
//
// The table has a string partition key PK and a string sort key SK, one global secondary index
// GSI1 (GSI1PK, GSI1SK, projection ALL) and a TTL attribute "ttl" (epoch seconds):
//
//	PK                     SK                        what
//	INTEGRATIONS           INTEGRATION#<id>          an integration: "settings" (JSON, secrets
//	                                                 redacted) and "secrets" (sealed blob)
//	RUN#<runId>            META                      a run without its result lists: "run" (JSON),
//	                                                 "version", "status", the results inline ("res",
//	                                                 gzip'd) or a pointer to chunks ("rtok",
//	                                                 "rchunks"), "rhash"; GSI1PK=RUNS#<status>,
//	                                                 GSI1SK=<runId>
//	RUN#<runId>            RESULT#<token>#<n>        chunk n of the run's gzip'd result lists
//	RAW#<partition>        <eventTime>#<eventId>     a raw event ("ev" JSON, or "evz" gzip'd JSON)
//	RAWID#<partition>      <eventId>                 the ID index of raw events: "key" is the SK of
//	                                                 the event's item
//
// Integrations share one partition so that listing them is one strongly consistent Query in ID
// order (there are tens, not millions). Runs are listed by status through GSI1; like every GSI
// read, ListRuns is eventually consistent, which suits its use (finding unfinished runs).
//
// Result lists (10,000 events with their CloudTrail records are tens of megabytes) are gzip'd and,
// when the run's item would pass the 400 KB item limit, split into chunks of ChunkSize bytes under
// a token that is new for every write. The META item names the token, and the write that changes it
// is conditional on the run's version, so a reader never mixes chunks of two versions and a losing
// writer's chunks are never referenced (it deletes them; "ttl" clears any a crash leaves behind).
// An update whose lists did not change (same SHA-256) keeps the chunks it has.
//
// Raw events are idempotent per EventID: AddRawEvents reads the ID index, writes the new events,
// then their ID items, each with BatchWriteItem. The ID item is written last, so an ID that is
// indexed always has its event stored; a step that crashed in between repeats the write of the
// same deterministic keys, which duplicates nothing.
//
// Run items (META, chunks) expire Retention after the run was created; raw events Retention after
// they were stored.
//
// Secrets are sealed by a seal.Sealer: seal.AESGCM with a key from the deployment, or a KMS sealer.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/seal"
)

// Names of the table's keys, index and TTL attribute: what a CloudFormation template declares.
const (
	AttrPK           = "PK"
	AttrSK           = "SK"
	AttrGSI1PK       = "GSI1PK"
	AttrGSI1SK       = "GSI1SK"
	IndexGSI1        = "GSI1"
	AttrTTL          = "ttl"
	DefaultRetention = 30 * 24 * time.Hour
)

// ChunkSize is the most bytes of result data one item carries, well under the 400 KB item limit.
const ChunkSize = 340 * 1024

// maxItem is the most bytes of data this store puts in any one item, leaving room for names and keys.
const maxItem = 350 * 1024

// rawGzipAbove is the size of a raw event's JSON above which the item holds it gzip'd.
const rawGzipAbove = 16 * 1024

// Batch limits of the DynamoDB API.
const (
	batchWriteMax = 25
	batchGetMax   = 100
	maxAttempts   = 10
)

// Statuses ListRuns looks under when given none.
var allStatuses = []string{core.StatusWaiting, core.StatusQuerying, core.StatusCompleted, core.StatusFailed, core.StatusCancelled}

// api is the part of *dynamodb.Client the store uses; tests wrap it to inject faults.
type api interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is a core.Store in one DynamoDB table. It is safe for concurrent use.
type Store struct {
	client    *dynamodb.Client
	db        api
	table     string
	sealer    seal.Sealer
	retention time.Duration
	log       *slog.Logger
	now       func() time.Time
	sleep     func(context.Context, time.Duration) error
}

var _ core.Store = (*Store)(nil)

// Option configures New.
type Option func(*Store)

// WithSealer seals integration secrets with s. Required.
func WithSealer(s seal.Sealer) Option { return func(st *Store) { st.sealer = s } }

// WithRetention sets how long run data and raw events are kept before DynamoDB's TTL removes
// them (default 30 days).
func WithRetention(d time.Duration) Option { return func(st *Store) { st.retention = d } }

// WithLogger sets where the store reports what it could not clean up (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(st *Store) { st.log = l } }

// WithNow sets the wall clock used for TTLs. TTLs are real time even when a run replays on a
// virtual clock: DynamoDB deletes items by its own clock.
func WithNow(now func() time.Time) Option { return func(st *Store) { st.now = now } }

// New returns a store over an existing table (see CreateTable).
func New(client *dynamodb.Client, table string, opts ...Option) (*Store, error) {
	s := &Store{client: client, db: client, table: table, retention: DefaultRetention,
		log: slog.Default(), now: time.Now, sleep: sleepCtx}
	for _, o := range opts {
		o(s)
	}
	if table == "" {
		return nil, errors.New("dynamo store: a table name is required")
	}
	if s.sealer == nil {
		return nil, errors.New("dynamo store: a sealer is required (WithSealer)")
	}
	if s.retention <= 0 {
		return nil, fmt.Errorf("dynamo store: retention must be positive, got %v", s.retention)
	}
	return s, nil
}

// LocalClient returns a client for DynamoDB Local at endpoint (e.g. http://127.0.0.1:8000):
// dummy static credentials, us-east-1, and no CRC32 response validation, which DynamoDB Local's
// responses do not always satisfy.
// optFns change the options further (a caller's middleware).
func LocalClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:                          "us-east-1",
		BaseEndpoint:                    aws.String(endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
	}, optFns...)
}

// Close releases nothing: the client belongs to the caller.
func (s *Store) Close() error { return nil }

// CreateTable creates the table (on-demand, with GSI1) when it does not exist, waits until it is
// active and turns TTL on. It is for tests and local use; deployments declare the table in the
// template.
func (s *Store) CreateTable(ctx context.Context) error {
	str := types.ScalarAttributeTypeS
	_, err := s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(s.table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPK), AttributeType: str},
			{AttributeName: aws.String(AttrSK), AttributeType: str},
			{AttributeName: aws.String(AttrGSI1PK), AttributeType: str},
			{AttributeName: aws.String(AttrGSI1SK), AttributeType: str},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(IndexGSI1),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(AttrGSI1PK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(AttrGSI1SK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", s.table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(s.client).Wait(ctx,
		&dynamodb.DescribeTableInput{TableName: aws.String(s.table)}, 2*time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", s.table, err)
	}
	ttl, err := s.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.table)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", s.table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && (d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = s.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(s.table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrTTL), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", s.table, err)
	}
	return nil
}

// Attribute helpers.

func attrS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func attrB(v []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: v} }
func attrN(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getB(item map[string]types.AttributeValue, name string) []byte {
	if v, ok := item[name].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

func getN(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrPK: attrS(pk), AttrSK: attrS(sk)}
}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

func notFound(what, id string) error { return core.Errorf(core.ENOTFOUND, "%s %q not found", what, id) }

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff waits before retry attempt n (0-based): exponential from 50 ms, capped at 5 s, with
// full jitter so concurrent writers do not retry in step.
func (s *Store) backoff(ctx context.Context, n int) error {
	d := min(50*time.Millisecond<<n, 5*time.Second)
	return s.sleep(ctx, d/2+rand.N(d/2+1))
}

func (s *Store) ttl(from time.Time) int64 { return from.Add(s.retention).Unix() }

// Integrations.

const integrationsPK = "INTEGRATIONS"

func integrationSK(id string) string { return "INTEGRATION#" + id }

// CreateIntegration stores a new integration; ECONFLICT when the ID exists.
func (s *Store) CreateIntegration(ctx context.Context, in *core.Integration) error {
	err := s.putIntegration(ctx, in, "attribute_not_exists(PK)")
	if isConditionFailed(err) {
		return core.Errorf(core.ECONFLICT, "integration %q already exists", in.ID)
	}
	return err
}

// UpdateIntegration replaces an integration; ENOTFOUND when absent. It sets the settings and
// secrets rather than putting the item, which keeps the set of active runs (see guard.go).
func (s *Store) UpdateIntegration(ctx context.Context, in *core.Integration) error {
	err := s.putIntegration(ctx, in, "")
	if isConditionFailed(err) {
		return notFound("integration", in.ID)
	}
	return err
}

// putIntegration puts a new integration under cond, or with cond "" updates an existing one.
func (s *Store) putIntegration(ctx context.Context, in *core.Integration, cond string) error {
	if in.ID == "" {
		return core.FieldError("id", "an integration needs an ID")
	}
	sealed, err := seal.SealIntegration(ctx, s.sealer, in)
	if err != nil {
		return err
	}
	item := key(integrationsPK, integrationSK(in.ID))
	item["settings"] = attrS(string(sealed.Settings))
	if sealed.Secrets != nil {
		item["secrets"] = attrB(sealed.Secrets)
	}
	if cond == "" {
		expr, values := "SET settings = :s REMOVE secrets", map[string]types.AttributeValue{":s": item["settings"]}
		if sealed.Secrets != nil {
			expr, values[":b"] = "SET settings = :s, secrets = :b", item["secrets"]
		}
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: key(integrationsPK, integrationSK(in.ID)), UpdateExpression: aws.String(expr),
			ConditionExpression: aws.String("attribute_exists(PK)"), ExpressionAttributeValues: values})
	} else {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table, Item: item, ConditionExpression: aws.String(cond)})
	}
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("put integration %s: %w", in.ID, err)
	}
	return err
}

// GetIntegration returns the integration with its secrets; ENOTFOUND when absent.
func (s *Store) GetIntegration(ctx context.Context, id string) (*core.Integration, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(integrationsPK, integrationSK(id)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get integration %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, notFound("integration", id)
	}
	sealed := seal.SealedIntegration{Settings: []byte(getS(out.Item, "settings")), Secrets: getB(out.Item, "secrets")}
	return sealed.Integration(ctx, s.sealer, id, true)
}

// ListIntegrations returns every integration, secrets redacted, ordered by ID. The sealed
// secrets are not even read.
func (s *Store) ListIntegrations(ctx context.Context) ([]*core.Integration, error) {
	var out []*core.Integration
	err := s.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("PK = :pk AND begins_with(SK, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": attrS(integrationsPK), ":prefix": attrS("INTEGRATION#")},
		ProjectionExpression:      aws.String("SK, settings"),
		ConsistentRead:            aws.Bool(true),
	}, func(item map[string]types.AttributeValue) error {
		sealed := seal.SealedIntegration{Settings: []byte(getS(item, "settings"))}
		in, err := sealed.Integration(ctx, s.sealer, strings.TrimPrefix(getS(item, "SK"), integrationSK("")), false)
		if err != nil {
			return err
		}
		out = append(out, in)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return out, nil
}

// query runs a Query to its last page, handing each item to fn.
func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue) error) error {
	in.TableName = &s.table
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
