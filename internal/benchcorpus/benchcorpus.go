// Package benchcorpus builds the corpora the benchmark commands (cmd/benchscale, cmd/benchgrid)
// replay against the CloudTrail emulator: real Stratus Red Team detonations as actions, renamed
// and moved in time so that each run has events of its own, over a busy account made of real
// TrailDiscover records re-timed and re-IDed at a given rate. Records are edited in place (their
// eventTime, eventID and awsRegion values spliced), never re-encoded, so that a generated corpus
// of hundreds of thousands of records is cheap to build.
package benchcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
)

// Template is one recorded action: a detonation's events and what identifies them.
type Template struct {
	Name   string
	Token  string // the user-agent token its calls carry
	Events []core.RawEvent
	Names  []string  // eventSource:eventName, distinct, in order of appearance
	First  time.Time // its earliest event
}

// DataDir is data, or when empty ../shared/data/cloudtrail beside the working directory (the
// repository root, where make and go run start).
func DataDir(data string) string {
	if data != "" {
		return data
	}
	wd, _ := os.Getwd()
	return filepath.Join(filepath.Dir(wd), "shared", "data", "cloudtrail")
}

// DetonationsDir is where the Stratus detonation logs are under a data folder.
func DetonationsDir(data string) string {
	return filepath.Join(data, "stratus-red-team", "docs", "detonation-logs")
}

// Load reads the Stratus detonations of the data folder (one template per file, sorted by name)
// and the TrailDiscover records a busy background is made of. It fails, naming the folder, when
// they are absent: callers say so and skip.
func Load(data string) ([]Template, []core.RawEvent, error) {
	dets := DetonationsDir(data)
	files, err := filepath.Glob(filepath.Join(dets, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, nil, fmt.Errorf("no Stratus detonation logs at %s (../shared/data/cloudtrail beside the repository)", dets)
	}
	slices.Sort(files)
	var ts []Template
	for _, f := range files {
		evs, err := corpus.Load(f)
		if err != nil {
			return nil, nil, err
		}
		if len(evs) == 0 {
			return nil, nil, fmt.Errorf("%s: no records", f)
		}
		ts = append(ts, TemplateOf(strings.TrimSuffix(filepath.Base(f), ".json"), evs, ""))
	}
	pool, err := corpus.Load(filepath.Join(data, "traildiscover", "docs", "logExamples"))
	if err != nil {
		return nil, nil, err
	}
	return ts, pool, nil
}

// TemplateOf makes a template of an action's events; token, when empty, is the first Stratus or
// Grimoire user-agent token found in them. evs must not be empty.
func TemplateOf(name string, evs []core.RawEvent, token string) Template {
	t := Template{Name: name, Token: token, Events: evs, First: evs[0].EventTime}
	for _, e := range evs {
		ua := gjson.GetBytes(e.Record, "userAgent").String()
		for _, prefix := range []string{"stratus-red-team_", "grimoire_"} {
			if i := strings.Index(ua, prefix); i >= 0 && t.Token == "" && len(ua) >= i+len(prefix)+36 {
				t.Token = ua[i : i+len(prefix)+36]
			}
		}
		n := gjson.GetBytes(e.Record, "eventSource").String() + ":" + gjson.GetBytes(e.Record, "eventName").String()
		if !slices.Contains(t.Names, n) {
			t.Names = append(t.Names, n)
		}
		if e.EventTime.Before(t.First) {
			t.First = e.EventTime
		}
	}
	return t
}

// Replay returns the template's events as a new action starting at start: its first event 10
// seconds after start, every event ID and the user-agent token suffixed with suffix (so that
// several replays of one template are told apart), and the new token.
func (t Template) Replay(start time.Time, suffix string) ([]core.RawEvent, string) {
	shift := start.Add(10 * time.Second).Sub(t.First)
	token := t.Token + suffix
	out := make([]core.RawEvent, 0, len(t.Events))
	for _, e := range t.Events {
		ne := Moved(e, e.EventTime.Add(shift), e.EventID+suffix)
		if t.Token != "" {
			ne.Record = []byte(strings.ReplaceAll(string(ne.Record), t.Token, token))
		}
		out = append(out, ne)
	}
	return out, token
}

// Replayed is one replayed action: its events and what its run must find.
type Replayed struct {
	Action  core.Action
	Events  []core.RawEvent
	IDs     map[string]bool // its own events
	Visible time.Time       // when the last of them becomes searchable under the delivery delays
}

// ReplayAction replays t as the action actionID of jobID starting at start (see Replay), its
// user-agent token the actor and, when expected, its event names the expectedEvents.
func (t Template) ReplayAction(start time.Time, suffix, jobID, actionID string, expected bool, delivery emulator.Delays) Replayed {
	evs, token := t.Replay(start, suffix)
	r := Replayed{Events: evs, IDs: map[string]bool{}, Action: core.Action{JobID: jobID, ActionID: actionID,
		StartTime: start, Actor: core.Actor{UserAgentToken: token}}}
	if expected {
		r.Action.ExpectedEvents = t.Names
	}
	for _, e := range evs {
		r.IDs[e.EventID] = true
		if v := e.EventTime.Add(delivery.For(e.EventID)); v.After(r.Visible) {
			r.Visible = v
		}
	}
	return r
}

// Moved returns e at another time (in its record too) and with another ID.
func Moved(e core.RawEvent, at time.Time, id string) core.RawEvent {
	at = at.UTC()
	rec := splice(string(e.Record), "eventTime", strconv.Quote(at.Format(time.RFC3339)))
	rec = splice(rec, "eventID", strconv.Quote(id))
	e.Record, e.EventTime, e.EventID, e.Envelope = []byte(rec), at, id, nil
	return e
}

// splice replaces the value of the record's top-level field, when it has one.
func splice(rec, field, value string) string {
	if v := gjson.Get(rec, field); v.Exists() && v.Index > 0 {
		return rec[:v.Index] + value + rec[v.Index+len(v.Raw):]
	}
	return rec
}

// Background is a busy account's other traffic: perMinute events a minute over [from, to), the
// k-th at from + k minutes / perMinute (truncated to the second, as CloudTrail's eventTime is),
// each the next record of pool moved to that time, into region (its awsRegion, so that a strict
// emulator serves it to that region's queries), with the ID prefix-k.
func Background(pool []core.RawEvent, from, to time.Time, perMinute int, region, prefix string) []core.RawEvent {
	if len(pool) == 0 || perMinute <= 0 || !to.After(from) {
		return nil
	}
	n := int(to.Sub(from) * time.Duration(perMinute) / time.Minute)
	out := make([]core.RawEvent, 0, n)
	for k := range n {
		at := from.Add(time.Duration(k) * time.Minute / time.Duration(perMinute)).Truncate(time.Second)
		e := Moved(pool[k%len(pool)], at, fmt.Sprintf("%s-%07d", prefix, k))
		e.Record = []byte(splice(string(e.Record), "awsRegion", strconv.Quote(region)))
		e.Region = region
		out = append(out, e)
	}
	return out
}
