package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/push"
)

func pushed(account, eventID string) string {
	return `{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"` + account +
		`","time":"2024-07-30T21:31:08Z","region":"us-east-1","resources":[],"detail":{"eventVersion":"1.08","eventID":"` + eventID +
		`","eventTime":"2024-07-30T21:31:08Z","eventName":"GetPasswordData","eventSource":"ec2.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"` + account + `"}}`
}

// TestIngest: POST /v1/ingest stores pushed events in their push partition once each; a batch with
// a bad envelope is refused whole, naming its index and field; it needs the token like every
// endpoint.
func TestIngest(t *testing.T) {
	e := newEnv(t)
	var res api.IngestResult
	e.must(200, e.do("POST", "/v1/ingest", pushed("123456789012", "e1"))).json(t, &res)
	if res != (api.IngestResult{Received: 1, Stored: 1}) {
		t.Errorf("first push: %+v", res)
	}
	e.must(200, e.do("POST", "/v1/ingest", "["+pushed("123456789012", "e1")+","+pushed("123456789012", "e2")+"]")).json(t, &res)
	if res != (api.IngestResult{Received: 2, Stored: 1}) {
		t.Errorf("repeated push: %+v, want e1 stored once", res)
	}
	bad := e.must(400, e.do("POST", "/v1/ingest", "["+pushed("123456789012", "e3")+","+pushed("1234", "e4")+"]")).errorBody(t)
	if bad.Field != "[1].account" {
		t.Errorf("bad envelope: %+v, want field [1].account", bad)
	}
	from, to := time.Date(2024, 7, 30, 0, 0, 0, 0, time.UTC), time.Date(2024, 7, 31, 0, 0, 0, 0, time.UTC)
	evs, err := core.CollectRawEvents(e.store.RawEvents(context.Background(), push.Partition("123456789012", "us-east-1", ""), from, to))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Errorf("stored %d events, want e1 and e2 (nothing of the refused batch)", len(evs))
	}
	e.must(401, e.do("POST", "/v1/ingest", pushed("123456789012", "e5"), "Authorization", ""))
}
