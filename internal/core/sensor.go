package core

import "time"

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
