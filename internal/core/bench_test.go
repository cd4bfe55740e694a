package core_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/testenv"
)

// benchCorpus builds n raw events from the real Stratus and TrailDiscover records: copies with
// fresh IDs spread over an hour around one detonation, so a tenth of a percent match its token.
func benchCorpus(b *testing.B, n int) ([]core.RawEvent, *core.Action) {
	data := testenv.SharedData(b)
	recs, err := corpus.Load(filepath.Join(data, "stratus-red-team", "docs", "detonation-logs"),
		filepath.Join(data, "traildiscover", "docs", "logExamples"))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC)
	out := make([]core.RawEvent, 0, n)
	for i := 0; len(out) < n; i++ {
		r := recs[i%len(recs)]
		r.EventID = fmt.Sprintf("%s-%d", r.EventID, i)
		r.EventTime = start.Add(time.Duration(i%3600-1800) * time.Second)
		out = append(out, r)
	}
	a := &core.Action{JobID: "j", ActionID: "a", StartTime: start,
		Actor:          core.Actor{UserAgentToken: "stratus-red-team_5c59eb79-6dac-405c-a4c4-e19aec03c666"},
		ExpectedEvents: []string{"ec2.amazonaws.com:GetPasswordData"}}
	return out, a
}

func benchIntegration() *core.Integration {
	in, err := core.ParseIntegration([]byte(`{"name":"bench","awsRegion":"us-east-1","saveSuspiciousEvents":true,"limit":100000}`))
	if err != nil {
		panic(err)
	}
	return in
}

// naiveCorrelate is the map baseline: skip what the (already parsed) event time puts outside the
// window first, as any implementation would, then decode each remaining record fully into a map
// and match and normalize from the map.
func naiveCorrelate(in *core.Integration, a *core.Action, raws []core.RawEvent) int {
	w := core.NewCorrelator(in, a).Window()
	matched := 0
	str := func(m map[string]any, path string) string {
		var cur any = m
		for _, p := range strings.Split(path, ".") {
			mm, ok := cur.(map[string]any)
			if !ok {
				return ""
			}
			cur = mm[p]
		}
		s, _ := cur.(string)
		return s
	}
	for _, r := range raws {
		// Like trailproof, use the time the source parsed into the raw event (the copies here
		// carry new times that their records do not).
		if !w.Contains(r.EventTime) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(r.Record, &m); err != nil {
			continue
		}
		if strings.Contains(str(m, "userAgent"), a.Actor.UserAgentToken) {
			_ = core.Event{EventID: str(m, "eventID"), EventName: str(m, "eventName"), EventSource: str(m, "eventSource"),
				User: str(m, "userIdentity.arn"), SrcIP: str(m, "sourceIPAddress"), Region: str(m, "awsRegion"),
				AccountID: str(m, "recipientAccountId"), UserAgent: str(m, "userAgent"), ErrorCode: str(m, "errorCode"),
				AccessKeyID: str(m, "userIdentity.accessKeyId"), Raw: r.Record}
			matched++
		}
	}
	return matched
}

// typedRecord holds only the fields correlation needs, so that encoding/json skips the rest.
type typedRecord struct {
	EventID      string `json:"eventID"`
	EventName    string `json:"eventName"`
	EventSource  string `json:"eventSource"`
	SourceIP     string `json:"sourceIPAddress"`
	Region       string `json:"awsRegion"`
	AccountID    string `json:"recipientAccountId"`
	UserAgent    string `json:"userAgent"`
	ErrorCode    string `json:"errorCode"`
	UserIdentity struct {
		ARN         string `json:"arn"`
		AccessKeyID string `json:"accessKeyId"`
	} `json:"userIdentity"`
}

// typedCorrelate is the typed-struct baseline: the time check first, then encoding/json into a
// struct of the fields correlation needs (the fastest plain-library decoder of a fixed field set).
func typedCorrelate(in *core.Integration, a *core.Action, raws []core.RawEvent) int {
	w := core.NewCorrelator(in, a).Window()
	matched := 0
	for _, r := range raws {
		if !w.Contains(r.EventTime) {
			continue
		}
		var t typedRecord
		if err := json.Unmarshal(r.Record, &t); err != nil {
			continue
		}
		if strings.Contains(t.UserAgent, a.Actor.UserAgentToken) {
			_ = core.Event{EventID: t.EventID, EventName: t.EventName, EventSource: t.EventSource,
				User: t.UserIdentity.ARN, SrcIP: t.SourceIP, Region: t.Region, AccountID: t.AccountID,
				UserAgent: t.UserAgent, ErrorCode: t.ErrorCode, AccessKeyID: t.UserIdentity.AccessKeyID, Raw: r.Record}
			matched++
		}
	}
	return matched
}

// BenchmarkCorrelate compares trailproof's normalize+correlate with the map and typed-struct
// baselines over 100,000 real records; `make bench` prints the ratio of their records per second.
func BenchmarkCorrelate(b *testing.B) {
	raws, a := benchCorpus(b, 100_000)
	in := benchIntegration()
	var want int
	b.Run("trailproof", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			res := core.NewCorrelator(in, a).Correlate(raws)
			want = len(res.Events)
		}
		b.ReportMetric(float64(len(raws))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	for _, base := range []struct {
		name string
		fn   func(*core.Integration, *core.Action, []core.RawEvent) int
	}{{"naive", naiveCorrelate}, {"typed", typedCorrelate}} {
		b.Run(base.name, func(b *testing.B) {
			b.ReportAllocs()
			var got int
			for b.Loop() {
				got = base.fn(in, a, raws)
			}
			b.ReportMetric(float64(len(raws))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			if got != want {
				b.Fatalf("%s baseline matched %d events, trailproof %d: the comparison is not like for like", base.name, got, want)
			}
		})
	}
}
