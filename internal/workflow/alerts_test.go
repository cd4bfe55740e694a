package workflow_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/workflow"
)

// nameRule is a Correlation Query stand-in: it hits events with one event name.
type nameRule string

func (n nameRule) Name() string { return "name" }
func (n nameRule) Match(_ json.RawMessage, ev *core.Event) (bool, error) {
	return ev.EventName == string(n), nil
}

func demoCorpus(t *testing.T) []core.RawEvent {
	t.Helper()
	var all []core.RawEvent
	for _, f := range []string{filepath.Join(testenv.RepoRoot(), "examples", "demo", "cloudtrail.json"), "testdata/insights.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := corpus.Parse(f, b)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	return all
}

var demoStart = time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)

// TestAlerts: Insights events about the matched events and Correlation Query hits are the
// alerts; alarmSensorUuids keeps or drops them; the limit applies to alerts on their own.
func TestAlerts(t *testing.T) {
	sensor := core.SensorUUID("210987654321", "us-west-2")
	other := core.SensorUUID("999999999999", "us-west-2")
	tests := []struct {
		name     string
		settings string
		rule     core.AlertRule
		want     []string // raised_by of each alert, in order
		events   int
	}{
		{"insight only", `{}`, nil, []string{"insight:ApiErrorRateInsight", "insight:ApiErrorRateInsight"}, 8},
		{"query and insight", `{"correlationQueryEnabled":true,"correlationQuery":"true"}`, nameRule("GetCallerIdentity"),
			[]string{"correlationQuery", "insight:ApiErrorRateInsight", "insight:ApiErrorRateInsight"}, 8},
		{"alarm sensor kept", `{"alarmSensorUuids":["` + sensor + `"]}`, nil, []string{"insight:ApiErrorRateInsight", "insight:ApiErrorRateInsight"}, 8},
		{"alarm sensor dropped", `{"alarmSensorUuids":["` + other + `"]}`, nil, nil, 8},
		{"event sensor dropped: nothing matched, nothing to alert on", `{"eventSensorUuids":["` + other + `"]}`, nil, nil, 0},
		{"limit on alerts alone", `{"limit":1,"correlationQueryEnabled":true,"correlationQuery":"true"}`, nameRule("GetCallerIdentity"), []string{"correlationQuery"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, demoCorpus(t), demoStart)
			var extra map[string]any
			if err := json.Unmarshal([]byte(tt.settings), &extra); err != nil {
				t.Fatal(err)
			}
			doc := map[string]any{"name": "t", "awsRegion": "us-west-2", "accessKeyId": "AKIATESTTESTTEST0001", "secretAccessKey": "s-secret"}
			for k, v := range extra {
				doc[k] = v
			}
			b, _ := json.Marshal(doc)
			s.integration(t, string(b))
			var steps []string
			s.eng = workflow.New(s.store, s.eng.Sources(), workflow.WithClock(s.clock),
				workflow.WithAlertCompiler(func(string) (core.AlertRule, error) { return tt.rule, nil }),
				workflow.WithObserver(func(step string, in, out workflow.State) { steps = append(steps, step) }))
			r := s.run(t, &core.Action{JobID: "j", ActionID: "a", StartTime: demoStart,
				Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}})
			var got []string
			for _, a := range r.Alerts {
				got = append(got, a.RaisedBy)
				if a.Reason == "" || len(a.Raw) == 0 {
					t.Errorf("alert without reason or record: %+v", a)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
			if r.Alerted == nil || *r.Alerted != (len(tt.want) > 0) || len(r.Events) != tt.events {
				t.Errorf("alerted %v with %d events, want %v and %d", r.IsAlerted(), len(r.Events), len(tt.want) > 0, tt.events)
			}
			if !strings.Contains(strings.Join(steps, ","), workflow.StepAlerts) {
				t.Errorf("no alerts step ran: %v", steps)
			}
		})
	}
}

// TestAlertsStepSchedule: the alerts step runs every correlationQueryInterval, not every query.
func TestAlertsStepSchedule(t *testing.T) {
	s := newStack(t, demoCorpus(t), demoStart)
	s.integration(t, `{"name":"t","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"s-secret","correlationQueryInterval":2}`)
	var fetches, alerts int
	s.eng = workflow.New(s.store, s.eng.Sources(), workflow.WithClock(s.clock),
		workflow.WithObserver(func(step string, in, out workflow.State) {
			switch step {
			case workflow.StepFetch:
				fetches++
			case workflow.StepAlerts:
				alerts++
			}
		}))
	r := s.run(t, &core.Action{JobID: "j", ActionID: "a", StartTime: demoStart, Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}})
	// 15 minutes of queries every 30 s; alerts every 2 minutes.
	if r.Status != core.StatusCompleted || fetches < 25 || alerts < 6 || alerts > 9 {
		t.Errorf("status %s, %d fetches and %d alerts steps", r.Status, fetches, alerts)
	}
}

// TestSensors: with discoverNetworkDevices, the accounts and regions the run read become the
// integration's sensors, with their stable UUIDs; without it, none are recorded and events carry
// no product information.
func TestSensors(t *testing.T) {
	for _, discover := range []bool{true, false} {
		s := newStack(t, demoCorpus(t), demoStart)
		settings := `{"name":"t","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"s-secret","discoverNetworkDevices":` +
			map[bool]string{true: "true", false: "false"}[discover] + `}`
		s.integration(t, settings)
		r := s.run(t, &core.Action{JobID: "j", ActionID: "a", StartTime: demoStart, Actor: core.Actor{UserAgentToken: "stratus-red-team_3f2a9c1e"}})
		got, err := s.store.ListSensors(context.Background(), "it")
		if err != nil {
			t.Fatal(err)
		}
		var uuids []string
		for _, sn := range got {
			uuids = append(uuids, sn.UUID)
			if sn.Vendor != core.SensorVendor || sn.Product != core.SensorProduct || sn.FirstSeen.IsZero() {
				t.Errorf("sensor %+v", sn)
			}
		}
		var want []string
		if discover {
			// The demo corpus: one account, in us-west-2 and us-east-1 (its STS call).
			want = []string{core.SensorUUID("210987654321", "us-west-2"), core.SensorUUID("210987654321", "us-east-1")}
			slices.Sort(want)
		}
		if diff := cmp.Diff(want, uuids); diff != "" {
			t.Errorf("discover=%v: sensors (-want +got):\n%s", discover, diff)
		}
		if len(r.Events) == 0 || (r.Events[0].Product != "") != discover || (r.Events[0].SensorUUID != "") != discover {
			t.Errorf("discover=%v: event product %q sensor %q", discover, r.Events[0].Product, r.Events[0].SensorUUID)
		}
	}
}
