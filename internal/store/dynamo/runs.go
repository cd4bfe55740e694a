package dynamo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/internal/enc"
)

// Runs.

const runMetaSK = "META"

func runPK(id string) string { return "RUN#" + id }

func chunkPrefix(token string) string { return "RESULT#" + token + "#" }

func chunkSK(token string, n int) string { return fmt.Sprintf("%s%06d", chunkPrefix(token), n) }

// runState is what the META item says about the stored version and its results.
type runState struct {
	version int64
	status  string
	hash    string
	token   string
	chunks  int
	ttl     int64
}

func stateOf(item map[string]types.AttributeValue) runState {
	return runState{version: getN(item, "version"), status: getS(item, "status"), hash: getS(item, "rhash"), token: getS(item, "rtok"),
		chunks: int(getN(item, "rchunks")), ttl: getN(item, AttrTTL)}
}

// CreateRun stores a new run with Version 1; ECONFLICT when the run ID exists.
func (s *Store) CreateRun(ctx context.Context, r *core.Run) error {
	if r.RunID == "" {
		return core.FieldError("runId", "a run needs an ID")
	}
	stored := *r
	stored.Version = 1
	// The run is bound to its integration in the same transaction (see guard.go).
	with := s.integrationExists(r.IntegrationID)
	if !core.Ended(r.Status) {
		with = s.markActive(r.IntegrationID, r.RunID, true)
	}
	err := s.writeRun(ctx, &stored, runState{ttl: s.ttl(s.now())}, "attribute_not_exists(PK)", nil, with)
	if isConditionFailed(err) {
		return core.Errorf(core.ECONFLICT, "run %q already exists", r.RunID)
	}
	if errors.Is(err, errIntegrationGone) {
		return notFound("integration", r.IntegrationID)
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
		ProjectionExpression:     aws.String("#v, #st, rhash, rtok, rchunks, #ttl"),
		ExpressionAttributeNames: map[string]string{"#v": "version", "#st": "status", "#ttl": AttrTTL},
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
	values := map[string]types.AttributeValue{":v": attrN(r.Version)}
	var with *types.TransactWriteItem
	if core.Ended(r.Status) != core.Ended(prev.status) { // a run that ends leaves its integration's active runs
		with = s.markActive(r.IntegrationID, r.RunID, !core.Ended(r.Status))
	}
	err = s.writeRun(ctx, &stored, prev, "#v = :v", values, with)
	if errors.Is(err, errIntegrationGone) && core.Ended(r.Status) {
		err = s.writeRun(ctx, &stored, prev, "#v = :v", values, nil) // nothing to unmark
	}
	if errors.Is(err, errIntegrationGone) {
		return notFound("integration", r.IntegrationID)
	}
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
// did not change and deleted once the new META item no longer names them. With with, the META
// item and with are written in one transaction (see putWith).
func (s *Store) writeRun(ctx context.Context, r *core.Run, prev runState, cond string, values map[string]types.AttributeValue, with *types.TransactWriteItem) error {
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
	put := &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values}
	if with != nil {
		err = s.putWith(ctx, put, with)
	} else {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
			ExpressionAttributeNames: put.ExpressionAttributeNames, ExpressionAttributeValues: put.ExpressionAttributeValues,
		})
	}
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
