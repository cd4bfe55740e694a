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
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/internal/enc"
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

// UpdateIntegration replaces an integration; ENOTFOUND when absent.
func (s *Store) UpdateIntegration(ctx context.Context, in *core.Integration) error {
	err := s.putIntegration(ctx, in, "attribute_exists(PK)")
	if isConditionFailed(err) {
		return notFound("integration", in.ID)
	}
	return err
}

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
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item, ConditionExpression: aws.String(cond)})
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

// DeleteIntegration removes an integration; ENOTFOUND when absent.
func (s *Store) DeleteIntegration(ctx context.Context, id string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.table, Key: key(integrationsPK, integrationSK(id)),
		ConditionExpression: aws.String("attribute_exists(PK)")})
	if isConditionFailed(err) {
		return notFound("integration", id)
	}
	if err != nil {
		return fmt.Errorf("delete integration %s: %w", id, err)
	}
	return nil
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

// Runs.

const runMetaSK = "META"

func runPK(id string) string { return "RUN#" + id }

func chunkPrefix(token string) string { return "RESULT#" + token + "#" }

func chunkSK(token string, n int) string { return fmt.Sprintf("%s%06d", chunkPrefix(token), n) }

// runState is what the META item says about the stored version and its results.
type runState struct {
	version int64
	hash    string
	token   string
	chunks  int
	ttl     int64
}

func stateOf(item map[string]types.AttributeValue) runState {
	return runState{version: getN(item, "version"), hash: getS(item, "rhash"), token: getS(item, "rtok"),
		chunks: int(getN(item, "rchunks")), ttl: getN(item, AttrTTL)}
}

// CreateRun stores a new run with Version 1; ECONFLICT when the run ID exists.
func (s *Store) CreateRun(ctx context.Context, r *core.Run) error {
	if r.RunID == "" {
		return core.FieldError("runId", "a run needs an ID")
	}
	stored := *r
	stored.Version = 1
	err := s.writeRun(ctx, &stored, runState{ttl: s.ttl(s.now())}, "attribute_not_exists(PK)", nil)
	if isConditionFailed(err) {
		return core.Errorf(core.ECONFLICT, "run %q already exists", r.RunID)
	}
	if err != nil {
		return fmt.Errorf("create run %s: %w", r.RunID, err)
	}
	r.Version = 1
	return nil
}

// UpdateRun replaces the run if its stored Version equals r.Version, then increments r.Version;
// ECONFLICT (and nothing written) when another writer got there first.
func (s *Store) UpdateRun(ctx context.Context, r *core.Run) error {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(runPK(r.RunID), runMetaSK), ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#v, rhash, rtok, rchunks, #ttl"),
		ExpressionAttributeNames: map[string]string{"#v": "version", "#ttl": AttrTTL},
	})
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.RunID, err)
	}
	if out.Item == nil {
		return notFound("run", r.RunID)
	}
	prev := stateOf(out.Item)
	conflict := core.Errorf(core.ECONFLICT, "run %q changed concurrently (your version %d is stale)", r.RunID, r.Version)
	if prev.version != r.Version {
		return conflict
	}
	stored := *r
	stored.Version = r.Version + 1
	err = s.writeRun(ctx, &stored, prev, "#v = :v",
		map[string]types.AttributeValue{":v": attrN(r.Version)})
	if isConditionFailed(err) {
		return conflict
	}
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.RunID, err)
	}
	r.Version = stored.Version
	return nil
}

// writeRun puts r's META item under cond, after writing its result chunks when they do not fit
// in the item. prev is the stored state (zero for a new run): its chunks are reused when the lists
// did not change and deleted once the new META item no longer names them.
func (s *Store) writeRun(ctx context.Context, r *core.Run, prev runState, cond string, values map[string]types.AttributeValue) error {
	summary, results := enc.Split(r)
	sj, err := json.Marshal(summary)
	if err != nil {
		return fmt.Errorf("encode run: %w", err)
	}
	if len(sj) > maxItem/2 {
		return core.Errorf(core.ETOOLARGE, "run %s: its progress and settings take %d bytes, over the %d a store item allows", r.RunID, len(sj), maxItem/2)
	}
	packed, err := results.Pack()
	if err != nil {
		return err
	}
	item := key(runPK(r.RunID), runMetaSK)
	item["run"] = attrS(string(sj))
	item["version"] = attrN(r.Version)
	item["status"] = attrS(r.Status)
	item[AttrGSI1PK] = attrS("RUNS#" + r.Status)
	item[AttrGSI1SK] = attrS(r.RunID)
	item["rhash"] = attrS(packed.Hash)
	item[AttrTTL] = attrN(prev.ttl)

	newToken := ""
	switch {
	case len(sj)+len(packed.Gzip) <= maxItem:
		item["res"] = attrB(packed.Gzip)
	case prev.token != "" && prev.hash == packed.Hash:
		newToken = prev.token // same lists: the stored chunks stay valid
		item["rtok"], item["rchunks"] = attrS(prev.token), attrN(int64(prev.chunks))
	default:
		newToken = randomToken()
		n, err := s.putChunks(ctx, r.RunID, newToken, packed.Gzip, prev.ttl)
		if err != nil {
			s.deleteChunks(ctx, r.RunID, newToken, n)
			return err
		}
		item["rtok"], item["rchunks"] = attrS(newToken), attrN(int64(n))
	}

	names := map[string]string(nil)
	if strings.Contains(cond, "#v") {
		names = map[string]string{"#v": "version"}
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item, ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	if err != nil {
		if newToken != "" && newToken != prev.token {
			// Nobody else knows this token: the chunks are ours to remove.
			s.deleteChunks(ctx, r.RunID, newToken, chunkCount(len(packed.Gzip)))
		}
		return err
	}
	if prev.token != "" && prev.token != newToken {
		s.deleteChunks(ctx, r.RunID, prev.token, prev.chunks)
	}
	return nil
}

func chunkCount(size int) int { return (size + ChunkSize - 1) / ChunkSize }

func randomToken() string {
	b := make([]byte, 8)
	_, _ = crand.Read(b) // never fails: crypto/rand.Read panics rather than return an error
	return hex.EncodeToString(b)
}

// putChunks writes z in chunks under token and returns how many chunks it wrote.
func (s *Store) putChunks(ctx context.Context, runID, token string, z []byte, ttl int64) (int, error) {
	var reqs []types.WriteRequest
	for i, n := 0, 0; i < len(z); i, n = i+ChunkSize, n+1 {
		item := key(runPK(runID), chunkSK(token, n))
		item["z"] = attrB(z[i:min(i+ChunkSize, len(z))])
		item[AttrTTL] = attrN(ttl)
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	if err := s.batchWrite(ctx, reqs); err != nil {
		return len(reqs), fmt.Errorf("write result chunks: %w", err)
	}
	return len(reqs), nil
}

// deleteChunks removes chunks 0..n-1 of token, best effort: a failure leaves orphans that no META
// item names and that the TTL removes.
func (s *Store) deleteChunks(ctx context.Context, runID, token string, n int) {
	reqs := make([]types.WriteRequest, n)
	for i := range reqs {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(runPK(runID), chunkSK(token, i))}}
	}
	if err := s.batchWrite(context.WithoutCancel(ctx), reqs); err != nil {
		s.log.WarnContext(ctx, "cannot delete unused result chunks; the TTL will", "runId", runID, "chunks", n, "error", err)
	}
}

// GetRun returns the run, result lists included; ENOTFOUND when absent.
func (s *Store) GetRun(ctx context.Context, id string) (*core.Run, error) {
	// A concurrent update may replace the chunks between reading META and reading them; read again.
	for attempt := 0; ; attempt++ {
		r, err := s.getRun(ctx, id)
		if !errors.Is(err, errChunksMoved) || attempt == 4 {
			if err != nil {
				return nil, fmt.Errorf("get run %s: %w", id, err)
			}
			return r, nil
		}
	}
}

var errChunksMoved = errors.New("result chunks changed while reading")

func (s *Store) getRun(ctx context.Context, id string) (*core.Run, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(runPK(id), runMetaSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	if out.Item == nil {
		return nil, notFound("run", id)
	}
	r, err := decodeRun(out.Item)
	if err != nil {
		return nil, err
	}
	z := getB(out.Item, "res")
	if st := stateOf(out.Item); st.token != "" {
		var chunks [][]byte
		err := s.query(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("PK = :pk AND begins_with(SK, :prefix)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": attrS(runPK(id)), ":prefix": attrS(chunkPrefix(st.token))},
			ConsistentRead:            aws.Bool(true),
		}, func(item map[string]types.AttributeValue) error {
			chunks = append(chunks, getB(item, "z"))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read result chunks: %w", err)
		}
		if len(chunks) != st.chunks {
			return nil, errChunksMoved
		}
		z = slices.Concat(chunks...)
	}
	if z != nil {
		res, err := enc.UnpackResults(z)
		if err != nil {
			return nil, err
		}
		res.Join(r)
	}
	return r, nil
}

func decodeRun(item map[string]types.AttributeValue) (*core.Run, error) {
	r := new(core.Run)
	if err := json.Unmarshal([]byte(getS(item, "run")), r); err != nil {
		return nil, fmt.Errorf("decode run: %w", err)
	}
	r.Upgrade()
	r.Version = getN(item, "version")
	return r, nil
}

// ListRuns returns the runs whose status is one of statuses (every known status when none is
// given), ordered by run ID, without their result lists (Events, Alerts, Suspicious are nil: read
// the run with GetRun for them). It reads GSI1, so a change made an instant ago may not show yet.
func (s *Store) ListRuns(ctx context.Context, statuses ...string) ([]*core.Run, error) {
	if len(statuses) == 0 {
		statuses = allStatuses
	}
	var out []*core.Run
	for _, st := range slices.Compact(slices.Sorted(slices.Values(statuses))) {
		err := s.query(ctx, &dynamodb.QueryInput{
			IndexName:                 aws.String(IndexGSI1),
			KeyConditionExpression:    aws.String("GSI1PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": attrS("RUNS#" + st)},
			ProjectionExpression:      aws.String("#run, #v"),
			ExpressionAttributeNames:  map[string]string{"#run": "run", "#v": "version"},
		}, func(item map[string]types.AttributeValue) error {
			r, err := decodeRun(item)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list runs (%s): %w", st, err)
		}
	}
	slices.SortFunc(out, func(a, b *core.Run) int { return strings.Compare(a.RunID, b.RunID) })
	return out, nil
}

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

// RawEvents returns the partition's events whose EventTime is in [from, to], oldest first (then
// by EventID). Zero times leave that end open.
func (s *Store) RawEvents(ctx context.Context, partition string, from, to time.Time) ([]core.RawEvent, error) {
	cond := "PK = :pk"
	values := map[string]types.AttributeValue{":pk": attrS(rawPK(partition))}
	switch {
	case !from.IsZero() && !to.IsZero():
		if from.After(to) {
			return nil, nil
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
	var out []core.RawEvent
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
		var ev core.RawEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("decode raw event %s: %w", getS(item, AttrSK), err)
		}
		out = append(out, ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read raw events of %s: %w", partition, err)
	}
	return out, nil
}
