package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/store/storetest"
)

// newTestStore creates a table of its own in DynamoDB Local (skipping when it is not running)
// and deletes it when the test ends.
func newTestStore(t *testing.T, opts ...Option) (*Store, *dynamodb.Client) {
	t.Helper()
	client := LocalClient(storetest.DynamoEndpoint(t))
	key := make([]byte, seal.KeySize)
	rand.Read(key)
	sealer, err := seal.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	table := "trailproof-test-" + hex.EncodeToString(suffix)
	s, err := New(client, table, append([]Option{WithSealer(sealer)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.CreateTable(ctx); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("DeleteTable %s: %v", table, err)
		}
	})
	return s, client
}

func TestConformance(t *testing.T) {
	storetest.DynamoEndpoint(t) // skip once, not in every subtest
	storetest.Run(t, func(t *testing.T) core.Store {
		s, _ := newTestStore(t)
		return s
	})
}

func TestNew(t *testing.T) {
	client := LocalClient("http://127.0.0.1:1")
	sealer, _ := seal.NewAESGCM(make([]byte, seal.KeySize))
	for _, tc := range []struct {
		name  string
		table string
		opts  []Option
		want  string
	}{
		{"no sealer", "t", nil, "sealer is required"},
		{"no table", "", []Option{WithSealer(sealer)}, "table name is required"},
		{"bad retention", "t", []Option{WithSealer(sealer), WithRetention(-time.Hour)}, "retention must be positive"},
	} {
		if _, err := New(client, tc.table, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New %s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// scan returns every item of the store's table.
func scan(t *testing.T, client *dynamodb.Client, s *Store) []map[string]types.AttributeValue {
	t.Helper()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(s.table)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, out.Items...)
	}
	return items
}

// TestNoPlainSecretInTable reads every attribute of every item for the secret values.
func TestNoPlainSecretInTable(t *testing.T) {
	s, client := newTestStore(t)
	ctx := context.Background()
	in := storetest.Integration("int-1")
	if err := s.CreateIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, item := range scan(t, client, s) {
		for name, v := range item {
			switch v := v.(type) {
			case *types.AttributeValueMemberS:
				fmt.Fprintf(&dump, "%s=%s\n", name, v.Value)
			case *types.AttributeValueMemberB:
				fmt.Fprintf(&dump, "%s=%s\n", name, v.Value)
			}
		}
	}
	if !strings.Contains(dump.String(), in.AccessKeyID) {
		t.Fatalf("the table does not hold the integration: the check proves nothing")
	}
	for _, sec := range []core.Secret{in.SecretAccessKey, in.SessionToken, in.ExternalID} {
		if strings.Contains(dump.String(), sec.Reveal()) {
			t.Errorf("the table holds a secret in plain text")
		}
	}
}

// TestTTL checks that run data and raw events carry the retention TTL, and that TTL is on.
func TestTTL(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s, client := newTestStore(t, WithRetention(48*time.Hour), WithNow(func() time.Time { return now }))
	ctx := context.Background()
	if err := s.CreateIntegration(ctx, storetest.Integration("int-1")); err != nil {
		t.Fatal(err)
	}
	r := storetest.NewRun("run-ttl", core.StatusQuerying)
	r.Events = storetest.Events(0, 500, 2048) // over one item: chunked
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRawEvents(ctx, "run#run-ttl", []core.RawEvent{storetest.Raw("e1", now)}); err != nil {
		t.Fatal(err)
	}
	want := now.Add(48 * time.Hour).Unix()
	kinds := map[string]int{}
	for _, item := range scan(t, client, s) {
		pk, sk := getS(item, AttrPK), getS(item, AttrSK)
		kind := strings.SplitN(pk, "#", 2)[0] + "/" + strings.SplitN(sk, "#", 2)[0]
		kinds[kind]++
		_, has := item[AttrTTL]
		switch {
		case pk == integrationsPK:
			if has {
				t.Errorf("integration item %s has a TTL: integrations must not expire", sk)
			}
		case getN(item, AttrTTL) != want:
			t.Errorf("item %s / %s: ttl %d, want %d", pk, sk, getN(item, AttrTTL), want)
		}
	}
	for _, k := range []string{"RUN/META", "RUN/RESULT", "RAW/2030-01-02T03:04:05.000000000Z", "RAWID/e1", "INTEGRATIONS/INTEGRATION"} {
		if kinds[k] == 0 {
			t.Errorf("no %s item stored; got %v", k, kinds)
		}
	}
	d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.table)})
	if err != nil {
		t.Fatal(err)
	}
	if d.TimeToLiveDescription == nil || aws.ToString(d.TimeToLiveDescription.AttributeName) != AttrTTL {
		t.Errorf("TTL description %+v, want enabled on %q", d.TimeToLiveDescription, AttrTTL)
	}
}

// chunkItems counts the result chunks stored for a run, by token.
func chunkItems(t *testing.T, client *dynamodb.Client, s *Store, runID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, item := range scan(t, client, s) {
		if getS(item, AttrPK) == runPK(runID) && strings.HasPrefix(getS(item, AttrSK), "RESULT#") {
			out[strings.Split(getS(item, AttrSK), "#")[1]]++
		}
	}
	return out
}

// TestResultChunks: chunks of replaced results are deleted, unchanged results are not rewritten,
// and a writer that loses the version race leaves no chunks behind.
func TestResultChunks(t *testing.T) {
	s, client := newTestStore(t)
	ctx := context.Background()
	storetest.AddRunIntegration(t, s)
	r := storetest.NewRun("run-c", core.StatusQuerying)
	r.Events = storetest.Events(0, 1000, 2048)
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	first := chunkItems(t, client, s, "run-c")
	if len(first) != 1 {
		t.Fatalf("after CreateRun, chunk sets %v, want one", first)
	}

	stale, err := s.GetRun(ctx, "run-c")
	if err != nil {
		t.Fatal(err)
	}
	r.Status = core.StatusCompleted // lists unchanged: same chunks
	if err := s.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := chunkItems(t, client, s, "run-c"); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Errorf("an update with unchanged lists rewrote the chunks: %v, then %v", first, got)
	}

	// The stale writer is refused; its fresh chunks must not stay.
	stale.Events = storetest.Events(5000, 1000, 2048)
	if err := s.UpdateRun(ctx, stale); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("stale UpdateRun: %v, want ECONFLICT", err)
	}
	if got := chunkItems(t, client, s, "run-c"); fmt.Sprint(got) != fmt.Sprint(first) {
		t.Errorf("a refused update left chunks: %v, want %v", got, first)
	}

	r.Events = storetest.Events(9000, 1200, 2048)
	if err := s.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	got := chunkItems(t, client, s, "run-c")
	for tok := range first {
		if got[tok] != 0 {
			t.Errorf("the replaced results' chunks (%s) are still stored: %v", tok, got)
		}
	}
	if len(got) != 1 {
		t.Errorf("chunk sets after replacing the results: %v, want one", got)
	}
	back, err := s.GetRun(ctx, "run-c")
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Events) != 1200 || back.Events[0].EventID != r.Events[0].EventID {
		t.Errorf("GetRun after replacing the results: %d events", len(back.Events))
	}

	// Results shrinking to fit the item go inline and drop the chunks.
	r.Events = storetest.Events(0, 3, 100)
	if err := s.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := chunkItems(t, client, s, "run-c"); len(got) != 0 {
		t.Errorf("inline results left chunks %v", got)
	}
}

// faulty wraps the client and breaks BatchWriteItem calls as told.
type faulty struct {
	api
	mu sync.Mutex
	// writes counts BatchWriteItem calls; onWrite may change what call n does.
	writes  int
	onWrite func(n int, in *dynamodb.BatchWriteItemInput) (apply int, unprocessed bool, err error)
}

func (f *faulty) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	f.writes++
	n := f.writes
	f.mu.Unlock()
	if f.onWrite == nil {
		return f.api.BatchWriteItem(ctx, in, o...)
	}
	apply, unprocessed, ferr := f.onWrite(n, in)
	for table, reqs := range in.RequestItems {
		if apply > len(reqs) || apply < 0 {
			apply = len(reqs)
		}
		if apply > 0 {
			out, err := f.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{table: reqs[:apply]}}, o...)
			if err != nil {
				return out, err
			}
		}
		if ferr != nil {
			return nil, ferr
		}
		if unprocessed && apply < len(reqs) {
			return &dynamodb.BatchWriteItemOutput{UnprocessedItems: map[string][]types.WriteRequest{table: reqs[apply:]}}, nil
		}
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

func rawEvents(n int) []core.RawEvent {
	base := time.Date(2024, 7, 30, 21, 0, 0, 0, time.UTC)
	out := make([]core.RawEvent, n)
	for i := range out {
		out[i] = storetest.Raw(fmt.Sprintf("ev-%03d", i), base.Add(time.Duration(i)*time.Second))
	}
	return out
}

// TestBatchPartlyApplied crashes AddRawEvents in the middle of its BatchWriteItem calls, after
// part of one call was applied, then repeats it: nothing is duplicated, nothing lost.
func TestBatchPartlyApplied(t *testing.T) {
	crash := errors.New("simulated crash")
	evs := rawEvents(60) // event items in calls 1-3 (25, 25, 10), ID items in calls 4-6
	for _, tc := range []struct {
		name      string
		failAt    int
		apply     int
		wantAdded int // from the repeat
	}{
		{"among the event items", 2, 10, 60},
		{"after the event items, before the index", 4, 0, 60},
		{"among the index items", 5, 10, 25},
		{"at the last index item", 6, 9, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			ctx := context.Background()
			f := &faulty{api: s.db}
			s.db = f
			f.onWrite = func(n int, in *dynamodb.BatchWriteItemInput) (int, bool, error) {
				if n == tc.failAt {
					return tc.apply, false, crash
				}
				return -1, false, nil
			}
			if _, err := s.AddRawEvents(ctx, "run#1", evs); !errors.Is(err, crash) {
				t.Fatalf("first AddRawEvents: %v, want the simulated crash", err)
			}
			f.onWrite = nil
			added, err := s.AddRawEvents(ctx, "run#1", evs)
			if err != nil {
				t.Fatalf("repeated AddRawEvents: %v", err)
			}
			if added != tc.wantAdded {
				t.Errorf("repeat added %d, want %d (the events whose index entry the crash did not write)", added, tc.wantAdded)
			}
			got, err := core.CollectRawEvents(s.RawEvents(ctx, "run#1", time.Time{}, time.Time{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(evs) {
				t.Fatalf("after the repeat %d events stored, want %d", len(got), len(evs))
			}
			for i := range got {
				if got[i].EventID != evs[i].EventID {
					t.Fatalf("event %d is %s, want %s", i, got[i].EventID, evs[i].EventID)
				}
			}
			if again, err := s.AddRawEvents(ctx, "run#1", evs); err != nil || again != 0 {
				t.Errorf("third AddRawEvents: %d, %v; want 0 new", again, err)
			}
		})
	}
}

// TestUnprocessedItems has DynamoDB hand items back unprocessed (as under throttling): the store
// retries them until all are written.
func TestUnprocessedItems(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	f := &faulty{api: s.db}
	s.db = f
	var slept []time.Duration
	s.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	f.onWrite = func(n int, in *dynamodb.BatchWriteItemInput) (int, bool, error) {
		return 7, true, nil // only 7 items of each call are processed
	}
	evs := rawEvents(40)
	added, err := s.AddRawEvents(ctx, "run#u", evs)
	if err != nil || added != 40 {
		t.Fatalf("AddRawEvents with unprocessed items: %d, %v; want 40", added, err)
	}
	got, err := core.CollectRawEvents(s.RawEvents(ctx, "run#u", time.Time{}, time.Time{}))
	if err != nil || len(got) != 40 {
		t.Fatalf("RawEvents: %d, %v; want 40", len(got), err)
	}
	if len(slept) == 0 || slept[len(slept)-1] < slept[0] {
		t.Errorf("retries waited %v: want a growing backoff", slept)
	}

	// A table that never processes anything gives up with an error, not a hang.
	f.onWrite = func(int, *dynamodb.BatchWriteItemInput) (int, bool, error) { return 0, true, nil }
	if _, err := s.AddRawEvents(ctx, "run#u", rawEvents(41)[40:]); err == nil || !strings.Contains(err.Error(), "unprocessed") {
		t.Errorf("AddRawEvents when nothing is processed: %v, want an unprocessed-items error", err)
	}
}

// TestLargeRawRecord stores a raw event whose record is far over the compression threshold.
func TestLargeRawRecord(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	ev := storetest.Raw("big", time.Date(2024, 7, 30, 21, 0, 0, 0, time.UTC))
	ev.Record = []byte(`{"eventID":"big","requestParameters":{"policy":"` + strings.Repeat("Allow s3:GetObject ", 30000) + `"}}`)
	if added, err := s.AddRawEvents(ctx, "run#l", []core.RawEvent{ev}); err != nil || added != 1 {
		t.Fatalf("AddRawEvents of a %d-byte record: %d, %v", len(ev.Record), added, err)
	}
	got, err := core.CollectRawEvents(s.RawEvents(ctx, "run#l", time.Time{}, time.Time{}))
	if err != nil || len(got) != 1 || string(got[0].Record) != string(ev.Record) {
		t.Fatalf("large record did not round-trip: %d events, %v", len(got), err)
	}
}

// counting counts Query calls.
type counting struct {
	api
	queries int
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries++
	return c.api.Query(ctx, in, o...)
}

// TestQueryPaging reads a partition over DynamoDB's 1 MB page: every page must be read.
func TestQueryPaging(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	evs := rawEvents(1500)
	for i := range evs {
		evs[i].Record = []byte(fmt.Sprintf(`{"eventID":%q,"pad":%q}`, evs[i].EventID, strings.Repeat("y", 1000)))
	}
	if added, err := s.AddRawEvents(ctx, "run#p", evs); err != nil || added != len(evs) {
		t.Fatalf("AddRawEvents: %d, %v", added, err)
	}
	c := &counting{api: s.db}
	s.db = c
	got, err := core.CollectRawEvents(s.RawEvents(ctx, "run#p", time.Time{}, time.Time{}))
	if err != nil || len(got) != len(evs) {
		t.Fatalf("RawEvents: %d events, %v; want %d", len(got), err, len(evs))
	}
	if c.queries < 2 {
		t.Errorf("RawEvents over 1.5 MB made %d Query call(s): the test did not page", c.queries)
	}
	if got[len(got)-1].EventID != evs[len(evs)-1].EventID {
		t.Errorf("last event %s, want %s", got[len(got)-1].EventID, evs[len(evs)-1].EventID)
	}
}

// TestMovedSecretsDoNotOpen: one integration's sealed secrets copied into another's item (as
// someone with write access to the table could) do not open there, with an error saying so.
func TestMovedSecretsDoNotOpen(t *testing.T) {
	s, client := newTestStore(t)
	storetest.MovedSecrets(t, s, func(ctx context.Context) error {
		got, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(integrationsPK, integrationSK("victim"))})
		if err != nil || got.Item["secrets"] == nil {
			return fmt.Errorf("read the victim's item: %v", err)
		}
		_, err = client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: key(integrationsPK, integrationSK("attacker")),
			UpdateExpression:          aws.String("SET secrets = :s"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": got.Item["secrets"]}})
		return err
	})
}

// TestLegacyRun reads a run written before runs had a verdict.
func TestLegacyRun(t *testing.T) {
	ctx := context.Background()
	s, client := newTestStore(t)
	storetest.AddRunIntegration(t, s)
	r := storetest.NewRun("old", core.StatusFailed)
	r.Error = "TransientError: boom"
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	k := key(runPK("old"), runMetaSK)
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	legacy := storetest.LegacyRecord(t, []byte(getS(out.Item, "run")))
	_, err = client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: k,
		UpdateExpression:          aws.String("SET #r = :r"),
		ExpressionAttributeNames:  map[string]string{"#r": "run"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": attrS(string(legacy))}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckLegacyFailedRun(t, got)
}

// TestDeleteGuardExpiredRun: a run that expired (TTL) while still active leaves its ID in the
// integration's set of active runs; the delete finds the run gone, drops the ID and proceeds.
func TestDeleteGuardExpiredRun(t *testing.T) {
	ctx := context.Background()
	s, client := newTestStore(t)
	storetest.AddRunIntegration(t, s)
	r := storetest.NewRun("expired", core.StatusQuerying)
	if err := s.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIntegration(ctx, "int-1"); core.ErrorCode(err) != core.ECONFLICT {
		t.Fatalf("delete with an active run: %v, want ECONFLICT", err)
	}
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(runPK("expired"), runMetaSK)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIntegration(ctx, "int-1"); err != nil {
		t.Fatalf("delete once the run expired: %v", err)
	}
	if _, err := s.GetIntegration(ctx, "int-1"); core.ErrorCode(err) != core.ENOTFOUND {
		t.Errorf("the integration is still stored: %v", err)
	}
}
