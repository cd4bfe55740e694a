package core

import (
	"time"

	"github.com/google/uuid"
)

// Sensor identity for "Discover network devices automatically".
const (
	SensorVendor  = "Amazon Web Services"
	SensorProduct = "AWS CloudTrail"
)

// sensorNamespace makes SensorUUID stable across processes and versions: never change it.
var sensorNamespace = uuid.MustParse("6f0c2d9e-4a5b-5c1e-9d3f-7b8a1e2c4d60")

// SensorUUID is the stable UUID of the sensor (network device) of one account and region.
func SensorUUID(accountID, region string) string {
	return uuid.NewSHA1(sensorNamespace, []byte(accountID+"/"+region)).String()
}

// Normalizer applies an integration's field map to raw events. It is built once per run and is
// safe for concurrent use.
type Normalizer struct {
	// paths are each target's paths, as slots of the values one extraction yields (extract.go).
	paths map[string][]int
	// record and envelope are the paths' segments: a field-map path whose first segment starts
	// with a capital letter addresses the LookupEvents envelope (EventName, Username,
	// Resources.0.ResourceName), as every CloudTrail record field starts in lower case.
	record, envelope pathNode
	slots            int
	adjust           time.Duration
	discover         bool
}

// NewNormalizer compiles the integration's field map (DefaultFieldMap for targets it leaves out).
func NewNormalizer(in *Integration) *Normalizer {
	n := &Normalizer{paths: map[string][]int{}, adjust: in.EventTimeAdjustmentD(), discover: in.DiscoverNetworkDevices}
	for _, t := range FieldMapTargets {
		src, ok := in.FieldMap[t]
		if !ok {
			src = DefaultFieldMap[t]
		}
		for _, p := range src {
			root := &n.record
			if p != "" && p[0] >= 'A' && p[0] <= 'Z' {
				root = &n.envelope
			}
			root.add(p, n.slots)
			n.paths[t] = append(n.paths[t], n.slots)
			n.slots++
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// EventTime is the event's time after eventTimeAdjustment.
func (n *Normalizer) EventTime(ev *RawEvent) time.Time { return ev.EventTime.Add(n.adjust) }

// Normalize builds the normalized event: every field from the field map, the raw record, and with
// discoverNetworkDevices the sensor (vendor, product, sensor_uuid).
func (n *Normalizer) Normalize(ev *RawEvent) Event { return n.extract(ev).normalize() }

func (f *fields) normalize() Event {
	n, ev := f.n, f.ev
	e := Event{
		EventID:     f.first("event_id"),
		EventTime:   n.EventTime(ev),
		Computer:    f.first("computer"),
		Hosts:       f.all("hosts"),
		SrcIP:       f.first("src_ip"),
		DestIP:      f.first("dest_ip"),
		User:        f.first("user"),
		Description: f.first("description"),
		EventName:   f.first("event_name"),
		EventSource: f.first("event_source"),
		Region:      f.first("region"),
		AccountID:   f.first("account_id"),
		UserAgent:   f.first("user_agent"),
		ErrorCode:   f.first("error_code"),
		AccessKeyID: f.first("access_key_id"),
		Raw:         ev.Record,
	}
	if e.EventID == "" {
		e.EventID = ev.EventID
	}
	if e.Region == "" {
		e.Region = ev.Region
	}
	if n.discover {
		e.SensorUUID = SensorUUID(e.AccountID, e.Region)
		e.Vendor, e.Product = SensorVendor, SensorProduct
	}
	return e
}

// account returns the account and region of an event (its sensor), whether or not discovery is
// on, so sensor filters can apply either way.
func (f *fields) account() (account, region string) {
	region = f.first("region")
	if region == "" {
		region = f.ev.Region
	}
	return f.first("account_id"), region
}
