package workflow_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/push"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/workflow"
)

// busyBackground is a busy account's other traffic around a detonation: one event a second (60 a
// minute) from 15 minutes before start to 20 minutes after, each a TrailDiscover record moved
// into the detonation's account, region and time, without the action's user-agent token.
func busyBackground(t testing.TB, pool []core.RawEvent, d detonation, account string, start time.Time) []core.RawEvent {
	t.Helper()
	var out []core.RawEvent
	for i := range 35 * 60 {
		src := pool[i%len(pool)]
		var rec map[string]any
		if err := json.Unmarshal(src.Record, &rec); err != nil {
			t.Fatal(err)
		}
		at := start.Add(-15*time.Minute + time.Duration(i)*time.Second).UTC()
		id := fmt.Sprintf("busy-%s-%04d", d.name, i)
		rec["eventID"], rec["eventTime"], rec["awsRegion"], rec["recipientAccountId"] = id, at.Format(time.RFC3339), "us-east-1", account
		rec["userAgent"] = "aws-cli/2.15.0 background"
		b, _ := json.Marshal(rec)
		out = append(out, core.RawEvent{EventID: id, EventTime: at, Region: "us-east-1", Record: b})
	}
	return out
}

// busyCorpus loads the Stratus detonations and the TrailDiscover records a busy background is
// made of.
func busyCorpus(t testing.TB) (detonations, pool []core.RawEvent) {
	data := testenv.SharedData(t)
	detonations, err := corpus.Load(filepath.Join(data, "stratus-red-team", "docs", "detonation-logs"))
	if err != nil {
		t.Fatal(err)
	}
	if pool, err = corpus.Load(filepath.Join(data, "traildiscover", "docs", "logExamples")); err != nil {
		t.Fatal(err)
	}
	return detonations, pool
}

// pushRun runs the action of d over the detonation and a busy background, with LookupEvents
// delivering 5 minutes late and, when pushDelay > 0, EventBridge pushing pushDelay late and
// losing the fraction loss; the action expects the events named expected (none: it polls to its
// deadline).
func pushRun(t testing.TB, all, pool []core.RawEvent, d detonation, pushDelay time.Duration, loss float64, expected ...string) *core.Run {
	t.Helper()
	start := d.first.Add(-10 * time.Second)
	var account string
	for _, ev := range all {
		if slices.Contains(d.ids, ev.EventID) {
			account = push.AccountOf(ev)
			break
		}
	}
	world := append(slices.Clone(all), busyBackground(t, pool, d, account, start)...)
	// The integration's key names the account, as sts:GetCallerIdentity tells a run with push on.
	s := newStack(t, world, start, emulator.WithKeys(emulator.Key{AccessKeyID: "AKIATESTTESTTEST0001", SecretAccessKey: "test-secret-value", AccountID: account}))
	s.integration(t, baseSettings)
	var st core.Store = s.store
	if pushDelay > 0 {
		// The Stratus records' regions are anonymised, and the emulator serves them to every
		// region: they are pushed from the integration's region too.
		feed, err := push.NewFeed(world, func(ev core.RawEvent) (string, string) { return push.AccountOf(ev), "us-east-1" }, pushDelay, loss)
		if err != nil {
			t.Fatal(err)
		}
		st = &push.Store{Store: s.store, Feed: feed, Now: s.clock.Now}
	}
	src := testSources(s.clock)
	opts := []workflow.Option{workflow.WithClock(s.clock), workflow.WithAlertCompiler(alerts.Compiler())}
	if pushDelay > 0 {
		opts = append(opts, workflow.WithPush())
	}
	s.eng = workflow.New(st, src, opts...)
	return s.run(t, &core.Action{JobID: "job", ActionID: d.name, StartTime: start, Actor: core.Actor{UserAgentToken: d.token}, ExpectedEvents: expected})
}

// TestPushBusyAccount: in a busy account (60 events a minute, LookupEvents 5 minutes late), with
// push on (30 s, 5% of pushes lost) the run shows logged within about a minute of the action's
// first event and, at completion, has every event of the action, those whose push was lost
// included; with push off it is logged only once LookupEvents delivers, with the same events.
func TestPushBusyAccount(t *testing.T) {
	all, pool := busyCorpus(t)
	const loss = 0.05
	lostTotal := 0
	dets := detonations(t)
	for _, d := range dets {
		lost := 0
		for _, id := range d.ids {
			if push.Lost(id, loss) {
				lost++
			}
		}
		// Every detonation whose push loses an event, and a few others.
		if lost == 0 && !slices.Contains([]string{dets[0].name, dets[1].name}, d.name) {
			continue
		}
		lostTotal += lost
		t.Run(d.name, func(t *testing.T) {
			for _, on := range []bool{true, false} {
				var r *core.Run
				if on {
					r = pushRun(t, all, pool, d, 30*time.Second, loss)
				} else {
					r = pushRun(t, all, pool, d, 0, 0)
				}
				if r.Status != core.StatusCompleted || r.Verdict != core.VerdictLogged || r.LoggedAt == nil {
					t.Fatalf("push %v: status %s verdict %s loggedAt %v error %q", on, r.Status, r.Verdict, r.LoggedAt, r.Error)
				}
				after := r.LoggedAt.Sub(d.first)
				if on && after > 75*time.Second {
					t.Errorf("push on: logged %s after the first event, want about a minute", after)
				}
				if !on && after < 5*time.Minute {
					t.Errorf("push off: logged %s after the first event, before LookupEvents could show it", after)
				}
				if diff := cmp.Diff(d.ids, eventIDs(r.Events)); diff != "" {
					t.Errorf("push %v: %d of whose pushes were lost: matched events (-want +got):\n%s", on, lost, diff)
				}
				t.Logf("push %v: logged %s after the first event, completed %s after it, %d calls", on, after, r.CompletedAt.Sub(d.first), r.APICalls)
			}
		})
	}
	if lostTotal == 0 {
		t.Fatal("no detonation event's push was lost: the test would not show that polling finds them")
	}
}
