package workflow

import (
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// TestReadSchedule: when a run's fetch reads (5-minute window, a query every 30 s, settleTime 10:
// deadline at start + 15 min), and when its next read is due after one.
func TestReadSchedule(t *testing.T) {
	const settings = `{"name":"t","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"s"`
	integ, err := core.ParseIntegration([]byte(settings + `}`))
	if err != nil {
		t.Fatal(err)
	}
	long, err := core.ParseIntegration([]byte(settings + `,"queryTime":120}`)) // deadline at start + 130 min
	if err != nil {
		t.Fatal(err)
	}
	sec := func(s int) time.Time { return b0.Add(time.Duration(s) * time.Second) }
	run := func(expected bool, p core.Progress) *core.Run {
		r := &core.Run{Action: core.Action{StartTime: b0, Actor: core.Actor{UserAgentToken: "tok"}}, Progress: p}
		if expected {
			r.Action.ExpectedEvents = []string{"sts.amazonaws.com:GetCallerIdentity"}
		}
		return r
	}
	due := []struct {
		name string
		r    *core.Run
		now  time.Time
		want bool
	}{
		{"before the action can be visible", run(false, core.Progress{}), sec(300), false},
		{"just after it can be", run(false, core.Progress{}), sec(330), true},
		{"before the next read", run(false, core.Progress{ReadDueAt: sec(900)}), sec(600), false},
		{"a span unread", run(false, core.Progress{ReadDueAt: sec(900), Cursors: []core.Cursor{{Region: "us-east-1", GapTo: sec(60)}}}), sec(600), true},
		{"an Insights gap is not the fetch's", run(false, core.Progress{ReadDueAt: sec(900), Cursors: []core.Cursor{{Region: "us-east-1", Category: core.CategoryInsight, GapTo: sec(60)}}}), sec(600), false},
		{"the deadline", run(false, core.Progress{ReadDueAt: sec(2000)}), sec(900), true},
	}
	for _, tt := range due {
		if got := readDue(integ, tt.r, tt.now); got != tt.want {
			t.Errorf("%s: readDue at %s = %v, want %v", tt.name, tt.now.Sub(b0), got, tt.want)
		}
	}
	next := []struct {
		name  string
		integ *core.Integration
		r     *core.Run
		now   time.Time
		want  time.Time
	}{
		{"without expected events: the deadline after the first read", integ, run(false, core.Progress{}), sec(330), sec(900)},
		{"at least 5 minutes apart", integ, run(false, core.Progress{}), sec(120), sec(420)},
		{"a long window: twice the action's age", long, run(false, core.Progress{}), sec(990), sec(2970)},
		{"expected events: one interval after the first read", integ, run(true, core.Progress{}), sec(330), sec(360)},
		{"expected events: doubling", integ, run(true, core.Progress{}), sec(450), sec(570)},
		{"expected events: from the last new match", integ, run(true, core.Progress{MatchedGrewAt: sec(420)}), sec(450), sec(480)},
		{"expected events: never more than 5 minutes apart", long, run(true, core.Progress{}), sec(1800), sec(2100)},
	}
	for _, tt := range next {
		if got := nextRead(tt.integ, tt.r, tt.now); !got.Equal(tt.want) {
			t.Errorf("%s: nextRead at %s = %s, want %s", tt.name, tt.now.Sub(b0), got.Sub(b0), tt.want.Sub(b0))
		}
	}
}
