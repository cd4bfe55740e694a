package emulator

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
)

func TestParseDelays(t *testing.T) {
	tests := []struct {
		spec    string
		want    Delays
		wantErr string
	}{
		{spec: "5m", want: Delays{Base: 5 * time.Minute}},
		{spec: "0s", want: Delays{}},
		{spec: "5m,12m@0.1", want: Delays{Base: 5 * time.Minute, Tail: []DelayShare{{12 * time.Minute, 0.1}}}},
		{spec: " 5m , 12m@0.1, 15m@0.01", want: Delays{Base: 5 * time.Minute, Tail: []DelayShare{{12 * time.Minute, 0.1}, {15 * time.Minute, 0.01}}}},
		{spec: "", wantErr: "not a duration"},
		{spec: "five", wantErr: "not a duration"},
		{spec: "-1m", wantErr: "negative"},
		{spec: "12m@0.1", wantErr: "first part"},
		{spec: "5m,12m", wantErr: "duration@fraction"},
		{spec: "5m,12m@x", wantErr: "not a fraction"},
		{spec: "5m,12m@0", wantErr: "above 0"},
		{spec: "5m,12m@1.5", wantErr: "at most 1"},
		{spec: "5m,12m@0.6,15m@0.6", wantErr: "more than 1"},
		{spec: "5m,-12m@0.1", wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseDelays(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "deliveryDelay") {
					t.Fatalf("ParseDelays(%q) = %v, %v; want an error on deliveryDelay saying %q", tt.spec, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			again, err := ParseDelays(got.String())
			if err != nil || !cmp.Equal(got, again) {
				t.Errorf("String %q does not parse back: %v, %v", got.String(), again, err)
			}
		})
	}
}

// TestDelayShares: with 5m,12m@0.1 about a tenth of the real records are 12 minutes late, the
// same ones every time, and the emulator serves each one only once its own delay has passed.
func TestDelayShares(t *testing.T) {
	evs := load(t, sharedData(t, "stratus-red-team/docs/detonation-logs"))
	d, err := ParseDelays("5m,12m@0.1")
	if err != nil {
		t.Fatal(err)
	}
	late := map[string]bool{}
	for _, ev := range evs {
		if d.For(ev.EventID) == 12*time.Minute {
			late[ev.EventID] = true
		} else if got := d.For(ev.EventID); got != 5*time.Minute {
			t.Fatalf("%s: delay %s, want 5m or 12m", ev.EventID, got)
		}
	}
	if share := float64(len(late)) / float64(len(evs)); share < 0.05 || share > 0.15 {
		t.Errorf("%d of %d records are late (%.2f), want about 0.1", len(late), len(evs), share)
	}

	sort.Slice(evs, func(i, j int) bool { return evs[i].EventTime.Before(evs[j].EventTime) })
	newest := evs[len(evs)-1].EventTime
	visibleAt := func(now time.Time) []string {
		clk := clock.NewVirtual(now)
		_, url := start(t, evs, WithClock(clk), WithDeliveryDelays(d), WithRate(0))
		got, _ := readAll(t, client(url, "AKIATEST", "us-east-1"), &cloudtrail.LookupEventsInput{})
		ids := make([]string, 0, len(got))
		for _, e := range got {
			ids = append(ids, *e.EventId)
		}
		sort.Strings(ids)
		return ids
	}
	want := func(now time.Time) []string {
		var ids []string
		for _, ev := range evs {
			delay := 5 * time.Minute
			if late[ev.EventID] {
				delay = 12 * time.Minute
			}
			if !ev.EventTime.Add(delay).After(now) {
				ids = append(ids, ev.EventID)
			}
		}
		sort.Strings(ids)
		return ids
	}
	for _, after := range []time.Duration{5 * time.Minute, 9 * time.Minute, 12 * time.Minute} {
		now := newest.Add(after)
		got := visibleAt(now)
		if diff := cmp.Diff(want(now), got); diff != "" {
			t.Errorf("newest record + %s: visible records (-want +got):\n%s", after, diff)
		}
		if after == 12*time.Minute && len(got) != len(uniqueIDs(evs)) {
			t.Errorf("newest record + 12m: %d records visible, want all %d", len(got), len(uniqueIDs(evs)))
		}
	}
	// One late record, on its own: hidden 5 minutes after its eventTime, served at 12.
	for _, ev := range evs {
		if !late[ev.EventID] {
			continue
		}
		if slices.Contains(visibleAt(ev.EventTime.Add(5*time.Minute)), ev.EventID) {
			t.Errorf("%s (12m late) served 5 minutes after its eventTime", ev.EventID)
		}
		if !slices.Contains(visibleAt(ev.EventTime.Add(12*time.Minute)), ev.EventID) {
			t.Errorf("%s (12m late) not served 12 minutes after its eventTime", ev.EventID)
		}
		break
	}
}

func uniqueIDs(evs []core.RawEvent) map[string]bool {
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[ev.EventID] = true
	}
	return ids
}

func TestDelaysString(t *testing.T) {
	for spec, want := range map[string]string{"5m": "5m", "5m,12m@0.1": "5m,12m@0.1", "90s,1h@0.5": "1m30s,1h@0.5", "0s": "0s"} {
		d, err := ParseDelays(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.String(); got != want {
			t.Errorf("ParseDelays(%q).String() = %q, want %q", spec, got, want)
		}
	}
}
