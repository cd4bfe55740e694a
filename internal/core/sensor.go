package core

import (
	"slices"
	"strings"
	"time"
)

// Sensor is a network device in the Director's sense: one AWS account and region whose CloudTrail
// events trailproof has read, with a UUID that never changes for that account and region.
type Sensor struct {
	UUID      string    `json:"uuid"`
	AccountID string    `json:"accountId"`
	Region    string    `json:"region"`
	Vendor    string    `json:"vendor"`
	Product   string    `json:"product"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// NewSensor returns the sensor of an account and region, seen at t.
func NewSensor(accountID, region string, t time.Time) Sensor {
	return Sensor{UUID: SensorUUID(accountID, region), AccountID: accountID, Region: region,
		Vendor: SensorVendor, Product: SensorProduct, FirstSeen: t, LastSeen: t}
}

// Sensors returns the sensors of the raw events (management events of a known account), ordered
// by UUID; each is seen at the time of its newest event.
func (c *Correlator) Sensors(raws []RawEvent) []Sensor {
	byUUID := map[string]*Sensor{}
	for i := range raws {
		ev := &raws[i]
		if ev.Category == CategoryInsight {
			continue
		}
		account := c.n.first(ev, "account_id")
		if account == "" {
			continue
		}
		region := c.n.first(ev, "region")
		if region == "" {
			region = ev.Region
		}
		t := c.n.EventTime(ev)
		id := SensorUUID(account, region)
		if s, ok := byUUID[id]; ok {
			if t.Before(s.FirstSeen) {
				s.FirstSeen = t
			}
			if t.After(s.LastSeen) {
				s.LastSeen = t
			}
			continue
		}
		s := NewSensor(account, region, t)
		byUUID[id] = &s
	}
	out := make([]Sensor, 0, len(byUUID))
	for _, s := range byUUID {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Sensor) int { return strings.Compare(a.UUID, b.UUID) })
	return out
}

// MergeSensor folds a sighting into a known sensor: the first sighting stays, the last moves on.
func MergeSensor(known, seen Sensor) Sensor {
	if seen.FirstSeen.Before(known.FirstSeen) || known.FirstSeen.IsZero() {
		known.FirstSeen = seen.FirstSeen
	}
	if seen.LastSeen.After(known.LastSeen) {
		known.LastSeen = seen.LastSeen
	}
	return known
}
