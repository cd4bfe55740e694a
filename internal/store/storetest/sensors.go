package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// testSensors: sightings merge (first seen stays, last seen moves on), integrations keep their
// own sensors, and an unknown integration has none.
func testSensors(t *testing.T, s core.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	a := core.NewSensor("111122223333", "us-east-1", t0)
	b := core.NewSensor("111122223333", "eu-west-1", t0.Add(time.Minute))
	if err := s.PutSensors(ctx, "int-1", []core.Sensor{a, b}); err != nil {
		t.Fatal(err)
	}
	later, earlier := a, a
	later.FirstSeen, later.LastSeen = t0.Add(time.Hour), t0.Add(time.Hour)
	earlier.FirstSeen, earlier.LastSeen = t0.Add(-time.Hour), t0.Add(-time.Hour)
	for _, sn := range []core.Sensor{later, earlier} {
		if err := s.PutSensors(ctx, "int-1", []core.Sensor{sn}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSensors(ctx, "int-2", []core.Sensor{core.NewSensor("444455556666", "us-west-2", t0)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListSensors(ctx, "int-1")
	if err != nil {
		t.Fatal(err)
	}
	wantA := a
	wantA.FirstSeen, wantA.LastSeen = t0.Add(-time.Hour), t0.Add(time.Hour)
	want := []core.Sensor{wantA, b}
	if want[0].UUID > want[1].UUID {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sensors of int-1 (-want +got):\n%s", diff)
	}
	none, err := s.ListSensors(ctx, "nope")
	if err != nil || len(none) != 0 || none == nil {
		t.Errorf("sensors of an unknown integration: %v, %v (want an empty list)", none, err)
	}
}
