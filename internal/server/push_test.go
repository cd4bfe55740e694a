package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/trailproof/trailproof/internal/server"
)

// TestServePushOptIn: serve takes pushed events only when the operator turns push on (--push):
// without it there is no ingest endpoint (a run then asks no account of STS); with it, pushed
// events are taken with the bearer token.
func TestServePushOptIn(t *testing.T) {
	const event = `{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","account":"123456789012",` +
		`"time":"2024-07-30T21:31:08Z","region":"us-east-1","resources":[],"detail":{"eventVersion":"1.08","eventID":"e1",` +
		`"eventTime":"2024-07-30T21:31:08Z","eventName":"GetPasswordData","eventSource":"ec2.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"123456789012"}}`
	for _, tt := range []struct {
		push bool
		want int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		s, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Token: strongToken, Push: tt.push})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("POST", s.URL()+"/v1/ingest", strings.NewReader(event))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+strongToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("push %v: POST /v1/ingest answered %d, want %d", tt.push, resp.StatusCode, tt.want)
		}
		shutdown(t, s)
	}
}
