package core

import (
	"strings"
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
	x        *extractor // every target
	adjust   time.Duration
	discover bool
}

// NewNormalizer compiles the integration's field map (DefaultFieldMap for targets it leaves out).
func NewNormalizer(in *Integration) *Normalizer {
	return &Normalizer{x: newExtractor(in, FieldMapTargets), adjust: in.EventTimeAdjustmentD(), discover: in.DiscoverNetworkDevices}
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
func (n *Normalizer) Normalize(ev *RawEvent) Event {
	f := n.x.extract(ev, nil)
	// Copies: the extracted values refer to the event's bytes.
	first := func(target string) string { return strings.Clone(f.first(target)) }
	hosts := f.all("hosts")
	for i := range hosts {
		hosts[i] = strings.Clone(hosts[i])
	}
	e := Event{
		EventID:     first("event_id"),
		EventTime:   n.EventTime(ev),
		Computer:    first("computer"),
		Hosts:       hosts,
		SrcIP:       first("src_ip"),
		DestIP:      first("dest_ip"),
		User:        first("user"),
		Description: first("description"),
		EventName:   first("event_name"),
		EventSource: first("event_source"),
		Region:      first("region"),
		AccountID:   first("account_id"),
		UserAgent:   first("user_agent"),
		ErrorCode:   first("error_code"),
		AccessKeyID: first("access_key_id"),
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
