package core

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tidwall/gjson"
)

// TestTallyInSteps: folding events in over several steps, in any order, some of them again in
// later steps and some first as a push, gives what correlating all of them at once gives, for
// actions with and without actor keys, suspicious events, expected events and a limit that cuts.
func TestTallyInSteps(t *testing.T) {
	raws := loadRecords(t)
	// More events than the limits below, around the window's edges.
	for i := range 40 {
		ev := raws[i%len(raws)]
		ev.EventID = fmt.Sprintf("copy-%02d", i)
		ev.EventTime = start.Add(time.Duration(i-20) * 20 * time.Second)
		ev.Record = json.RawMessage(fmt.Sprintf(`{"eventID":%q,"eventName":"GetPasswordData","eventSource":"ec2.amazonaws.com","userAgent":"stratus-red-team_aaaa x","recipientAccountId":"111122223333","awsRegion":"us-west-2","userIdentity":{"arn":"arn:aws:iam::111122223333:user/u%d"}}`, ev.EventID, i%3))
		raws = append(raws, ev)
	}
	for _, tc := range []struct {
		name     string
		mod      func(*Integration)
		actor    Actor
		expected []string
	}{
		{"user agent", nil, Actor{UserAgentToken: "stratus-red-team_aaaa"}, []string{"ec2.amazonaws.com:GetPasswordData"}},
		{"limit cuts", func(in *Integration) { in.Limit = 7 }, Actor{UserAgentToken: "stratus-red-team_aaaa"}, []string{"ec2.amazonaws.com:GetPasswordData", "GetCallerIdentity"}},
		{"suspicious", func(in *Integration) { in.SaveSuspiciousEvents, in.Limit = true, 5 }, Actor{Principals: []string{"arn:aws:iam::111122223333:user/u1"}}, []string{"ec2.amazonaws.com:GetPasswordData"}},
		{"no actor key", func(in *Integration) { in.Limit = 4 }, Actor{}, []string{"ec2.amazonaws.com:GetPasswordData"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testIntegration()
			if tc.mod != nil {
				tc.mod(in)
			}
			a := &Action{JobID: "j", ActionID: "a", StartTime: start, Actor: tc.actor, ExpectedEvents: tc.expected}
			c := NewCorrelator(in, a)
			want := c.Correlate(raws)
			if len(want.Events) == 0 {
				t.Fatal("nothing matched: the test would show nothing")
			}
			for seed := range uint64(20) {
				rng := rand.New(rand.NewPCG(seed, 1))
				order := slices.Clone(raws)
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				var got Correlation
				for len(order) > 0 {
					n := min(len(order), 1+rng.IntN(15))
					tl := c.Resume(got)
					for _, ev := range order[:n] {
						if rng.IntN(4) == 0 {
							// Its push first, a copy that differs: the LookupEvents copy replaces it.
							tl.Add(pushCopy(t, ev), true)
						}
						tl.Add(&ev, false)
					}
					// A step that reads some of the earlier events again changes nothing.
					for _, ev := range raws[:rng.IntN(len(raws))] {
						if rng.IntN(3) == 0 {
							tl.Add(&ev, false)
						}
					}
					got = tl.Result()
					order = order[n:]
				}
				opts := cmpopts.IgnoreFields(Correlation{}, "Added")
				if diff := cmp.Diff(want, got, opts, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("seed %d: in steps (-all at once +in steps):\n%s", seed, diff)
				}
			}
		})
	}
}

// TestExtractOnePass: the one-pass extraction finds for every field-map path what gjson.Get
// finds for it, in the real records, with custom paths into arrays, the envelope, nested
// objects, names with gjson's special characters and paths that lead nowhere.
func TestExtractOnePass(t *testing.T) {
	raws := loadRecords(t)
	raws = append(raws, RawEvent{EventID: "x", Record: json.RawMessage(`{"a":{"b":[{"c":1},{"c":"two"}],"b":"dup"},"@timestamp":"t","we*ird":"w","arr":[["x"]],"n":null}`),
		Envelope: json.RawMessage(`{"Resources":[{"ResourceName":"r0"},{"ResourceName":"r1"}],"Username":"u"}`)})
	custom := map[string][]string{
		"computer":   {"a.b.1.c", "a.b.0.c", "Resources.1.ResourceName", "nothing.here"},
		"hosts":      {"a.b", "arr.0", "arr.0.0", "userIdentity", "sourceIPAddress"},
		"user":       {"Username", "@timestamp", "we*ird", "n", "userIdentity.sessionContext.sessionIssuer.arn"},
		"event_name": {"eventName", "a.b.c", "a.b.#"},
	}
	in := testIntegration()
	in.FieldMap = custom
	x := NewNormalizer(in).x
	for i := range raws {
		ev := &raws[i]
		f := x.extract(ev, nil)
		for _, target := range FieldMapTargets {
			src, ok := custom[target]
			if !ok {
				src = DefaultFieldMap[target]
			}
			for j, p := range src {
				doc := ev.Record
				if p[0] >= 'A' && p[0] <= 'Z' {
					doc = ev.Envelope
				}
				want := gjson.GetBytes(doc, gjsonPath(p))
				got := f.vals[x.paths[target][j]]
				if want.Raw != got.Raw || want.Exists() != got.Exists() {
					t.Errorf("%s: path %q: one pass found %q, gjson.Get %q", ev.EventID, p, got.Raw, want.Raw)
				}
			}
		}
	}
}

// gjsonPath escapes what gjson would read as syntax, so a field-map path names members literally.
func gjsonPath(p string) string {
	var b []byte
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '@', '*', '?', '|', '#', '!', '=', '<', '>', '%', '\\', '~':
			b = append(b, '\\')
		}
		b = append(b, p[i])
	}
	return string(b)
}

// pushCopy is ev as a push that differs from what LookupEvents returns (an errorCode of its own).
func pushCopy(t *testing.T, ev RawEvent) *RawEvent {
	var rec map[string]any
	if err := json.Unmarshal(ev.Record, &rec); err != nil {
		t.Fatal(err)
	}
	rec["errorCode"] = "pushed-copy"
	ev.Record, _ = json.Marshal(rec)
	ev.Envelope = nil
	return &ev
}
