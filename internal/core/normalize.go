package core

import (
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"
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

// fieldPath is one compiled field-map path: a gjson path over the record or the envelope.
type fieldPath struct {
	envelope bool
	path     string
}

// compilePath turns a field-map path into a gjson path. A first segment starting with a capital
// letter addresses the LookupEvents envelope (EventName, Username, Resources.0.ResourceName), as
// every CloudTrail record field starts in lower case.
func compilePath(p string) fieldPath {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '@', '*', '?', '|', '#', '!', '=', '<', '>', '%', '\\', '~':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return fieldPath{envelope: p != "" && p[0] >= 'A' && p[0] <= 'Z', path: b.String()}
}

// Normalizer applies an integration's field map to raw events. It is built once per run and is
// safe for concurrent use.
type Normalizer struct {
	paths    map[string][]fieldPath
	adjust   time.Duration
	discover bool
}

// NewNormalizer compiles the integration's field map (DefaultFieldMap for targets it leaves out).
func NewNormalizer(in *Integration) *Normalizer {
	n := &Normalizer{paths: map[string][]fieldPath{}, adjust: in.EventTimeAdjustmentD(), discover: in.DiscoverNetworkDevices}
	for _, t := range FieldMapTargets {
		src, ok := in.FieldMap[t]
		if !ok {
			src = DefaultFieldMap[t]
		}
		for _, p := range src {
			n.paths[t] = append(n.paths[t], compilePath(p))
		}
	}
	return n
}

func (n *Normalizer) get(ev *RawEvent, p fieldPath) gjson.Result {
	if p.envelope {
		return gjson.GetBytes(ev.Envelope, p.path)
	}
	return gjson.GetBytes(ev.Record, p.path)
}

// first returns the first non-empty value of a target's paths.
func (n *Normalizer) first(ev *RawEvent, target string) string {
	for _, p := range n.paths[target] {
		if r := n.get(ev, p); r.Exists() && r.Type != gjson.Null {
			if s := r.String(); s != "" {
				return s
			}
		}
	}
	return ""
}

// all returns every distinct non-empty value of a target's paths, in path order.
func (n *Normalizer) all(ev *RawEvent, target string) []string {
	var out []string
	for _, p := range n.paths[target] {
		r := n.get(ev, p)
		if !r.Exists() || r.Type == gjson.Null {
			continue
		}
		vals := []gjson.Result{r}
		if r.IsArray() {
			vals = r.Array()
		}
		for _, v := range vals {
			s := v.String()
			if s == "" || contains(out, s) {
				continue
			}
			out = append(out, s)
		}
	}
	return out
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
	e := Event{
		EventID:     n.first(ev, "event_id"),
		EventTime:   n.EventTime(ev),
		Computer:    n.first(ev, "computer"),
		Hosts:       n.all(ev, "hosts"),
		SrcIP:       n.first(ev, "src_ip"),
		DestIP:      n.first(ev, "dest_ip"),
		User:        n.first(ev, "user"),
		Description: n.first(ev, "description"),
		EventName:   n.first(ev, "event_name"),
		EventSource: n.first(ev, "event_source"),
		Region:      n.first(ev, "region"),
		AccountID:   n.first(ev, "account_id"),
		UserAgent:   n.first(ev, "user_agent"),
		ErrorCode:   n.first(ev, "error_code"),
		AccessKeyID: n.first(ev, "access_key_id"),
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

// Sensor returns the sensor UUID of an event (its account and region), whether or not discovery
// is on, so sensor filters can apply either way.
func (n *Normalizer) Sensor(ev *RawEvent) string {
	region := n.first(ev, "region")
	if region == "" {
		region = ev.Region
	}
	return SensorUUID(n.first(ev, "account_id"), region)
}
