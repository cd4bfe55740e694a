package workflow_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

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
	r, _ := pushRunWith(t, all, pool, d, pushSetup{}, pushDelay, loss, expected...)
	return r
}

// pushSetup varies pushRun's stack.
type pushSetup struct {
	settings string // the integration's settings (default baseSettings)
	// stsFails says whether STS answers its nth GetCallerIdentity (from 1) with ThrottlingException.
	stsFails func(n int) bool
	stsAsked *int                                            // when set, counts the GetCallerIdentity calls
	observe  func(s *stack, step string, out workflow.State) // told every step's output
}

// pushRunWith is pushRun on the stack set up, which it returns too.
func pushRunWith(t testing.TB, all, pool []core.RawEvent, d detonation, set pushSetup, pushDelay time.Duration, loss float64, expected ...string) (*core.Run, *stack) {
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
	if set.stsFails != nil || set.stsAsked != nil {
		s.url = stsFaults(t, s.emu, set.stsFails, set.stsAsked)
	}
	s.integration(t, cmp.Or(set.settings, baseSettings))
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
	if set.observe != nil {
		opts = append(opts, workflow.WithObserver(func(step string, _, out workflow.State) { set.observe(s, step, out) }))
	}
	s.eng = workflow.New(st, src, opts...)
	return s.run(t, &core.Action{JobID: "job", ActionID: d.name, StartTime: start, Actor: core.Actor{UserAgentToken: d.token}, ExpectedEvents: expected}), s
}

// stsFaults serves emu on loopback, answering its nth GetCallerIdentity (from 1) with STS's
// ThrottlingException when fails (if set) says so, and counting them in *asked (if set);
// everything else goes to emu as it came. The count is read once the run is over.
func stsFaults(t testing.TB, emu http.Handler, fails func(n int) bool, asked *int) string {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Authorization"), "/sts/aws4_request") {
			mu.Lock()
			n++
			if asked != nil {
				*asked = n
			}
			fail := fails != nil && fails(n)
			mu.Unlock()
			if fail {
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`)
				return
			}
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPushAccount: with push on, a run learns its integration's account from
// sts:GetCallerIdentity and reads its pushed events, logged within about a minute of the
// action's first event, without recording the account as a sensor: with discoverNetworkDevices
// off the integration has no sensors. A GetCallerIdentity that is throttled never fails the run:
// the run warns that push is not used yet and asks again at its next query (logged about one
// query interval later, the warning gone); one that keeps failing leaves the warning, and the run
// is logged by polling, with every event.
func TestPushAccount(t *testing.T) {
	all, pool := busyCorpus(t)
	d := detonations(t)[0]
	noDiscovery := `{"name":"t","awsRegion":"us-east-1","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"test-secret-value","discoverNetworkDevices":false}`
	tests := []struct {
		name        string
		set         pushSetup
		maxLogged   time.Duration // loggedAt at most this long after the first event
		minLogged   time.Duration // and at least this long
		warnedMid   bool          // a correlate step showed the push warning
		warnedAtEnd bool          // the completed run shows it
		sensors     bool          // the integration has sensors
		asked       func(n int) bool
	}{
		{"discovery off", pushSetup{settings: noDiscovery}, 75 * time.Second, 0, false, false, false, once},
		{"discovery on", pushSetup{}, 75 * time.Second, 0, false, false, true, once},
		{"throttled once", pushSetup{settings: noDiscovery, stsFails: func(n int) bool { return n == 1 }}, 105 * time.Second, 0, true, false, false,
			func(n int) bool { return n == 2 }},
		// Asked at every fetch: about one a query interval until the run completes.
		{"always throttled", pushSetup{settings: noDiscovery, stsFails: func(int) bool { return true }}, 20 * time.Minute, 5 * time.Minute, true, true, false,
			func(n int) bool { return n > 10 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnedMid, asked := false, 0
			tt.set.stsAsked = &asked
			tt.set.observe = func(s *stack, step string, out workflow.State) {
				if step != workflow.StepCorrelate {
					return
				}
				r, err := s.store.GetRun(context.Background(), out.RunID)
				if err != nil {
					t.Error(err)
					return
				}
				warnedMid = warnedMid || slices.ContainsFunc(r.Warnings, isPushWarning)
			}
			r, s := pushRunWith(t, all, pool, d, tt.set, 30*time.Second, 0)
			if r.Status != core.StatusCompleted || r.Verdict != core.VerdictLogged || r.LoggedAt == nil {
				t.Fatalf("status %s verdict %s loggedAt %v error %q", r.Status, r.Verdict, r.LoggedAt, r.Error)
			}
			if after := r.LoggedAt.Sub(d.first); after > tt.maxLogged || after < tt.minLogged {
				t.Errorf("logged %s after the first event, want between %s and %s", after, tt.minLogged, tt.maxLogged)
			}
			if diff := gocmp.Diff(d.ids, eventIDs(r.Events)); diff != "" {
				t.Errorf("matched events (-want +got):\n%s", diff)
			}
			if warnedMid != tt.warnedMid {
				t.Errorf("a step showed the push warning: %v, want %v", warnedMid, tt.warnedMid)
			}
			if got := slices.ContainsFunc(r.Warnings, isPushWarning); got != tt.warnedAtEnd {
				t.Errorf("completed run's warnings %q: push warning %v, want %v", r.Warnings, got, tt.warnedAtEnd)
			}
			if !tt.asked(asked) {
				t.Errorf("GetCallerIdentity asked %d times", asked)
			}
			sensors, err := s.store.ListSensors(context.Background(), "it")
			if err != nil {
				t.Fatal(err)
			}
			if (len(sensors) > 0) != tt.sensors {
				t.Errorf("the integration's sensors: %v, want some: %v", sensors, tt.sensors)
			}
			t.Logf("logged %s after the first event, GetCallerIdentity asked %d times, warnings %q", r.LoggedAt.Sub(d.first), asked, r.Warnings)
		})
	}
}

func once(n int) bool { return n == 1 }

func isPushWarning(w string) bool { return strings.HasPrefix(w, "push not used yet: ") }

// TestPushBusyAccount: in a busy account (60 events a minute, LookupEvents 5 minutes late), with
// push on (30 s, 5% of pushes lost) the run shows logged within about a minute of the action's
// first event and, at completion, has every event of the action, those whose push was lost
// included, with expected events or without; with push off it is logged only once LookupEvents
// delivers, with the same events.
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
			for _, c := range []struct {
				on       bool
				expected []string
			}{{true, nil}, {false, nil}, {true, d.names}, {false, d.names}} {
				on := c.on
				var r *core.Run
				if on {
					r = pushRun(t, all, pool, d, 30*time.Second, loss, c.expected...)
				} else {
					r = pushRun(t, all, pool, d, 0, 0, c.expected...)
				}
				if r.Status != core.StatusCompleted || r.Verdict != core.VerdictLogged || r.LoggedAt == nil {
					t.Fatalf("push %v, expected events %q: status %s verdict %s loggedAt %v error %q", on, c.expected, r.Status, r.Verdict, r.LoggedAt, r.Error)
				}
				after := r.LoggedAt.Sub(d.first)
				if on && after > 75*time.Second {
					t.Errorf("push on: logged %s after the first event, want about a minute", after)
				}
				if !on && after < 5*time.Minute {
					t.Errorf("push off: logged %s after the first event, before LookupEvents could show it", after)
				}
				if diff := gocmp.Diff(d.ids, eventIDs(r.Events)); diff != "" {
					t.Errorf("push %v, expected events %q: %d of whose pushes were lost: matched events (-want +got):\n%s", on, c.expected, lost, diff)
				}
				t.Logf("push %v, expected events %v: logged %s after the first event, completed %s after it, %d calls", on, c.expected != nil, after, r.CompletedAt.Sub(d.first), r.APICalls)
			}
		})
	}
	if lostTotal == 0 {
		t.Fatal("no detonation event's push was lost: the test would not show that polling finds them")
	}
}
