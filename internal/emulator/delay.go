package emulator

import (
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// Delays is how late CloudTrail delivers: most records Base after their eventTime, and a
// fraction of them later (Tail). Which delay a record gets is chosen from a hash of its EventID,
// so the same corpus is delivered the same way on every run and by every emulator.
type Delays struct {
	Base time.Duration
	Tail []DelayShare
}

// DelayShare is one late share of a Delays: Fraction of the records arrive After their eventTime.
type DelayShare struct {
	After    time.Duration
	Fraction float64
}

// FixedDelay is a Delays where every record arrives d late.
func FixedDelay(d time.Duration) Delays { return Delays{Base: d} }

// String renders d in the form ParseDelays reads ("5m,12m@0.1").
func (d Delays) String() string {
	parts := []string{shortDuration(d.Base)}
	for _, t := range d.Tail {
		parts = append(parts, shortDuration(t.After)+"@"+strconv.FormatFloat(t.Fraction, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

// shortDuration drops time.Duration.String's zero tails: 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Max is the longest delay any record gets.
func (d Delays) Max() time.Duration {
	m := d.Base
	for _, t := range d.Tail {
		m = max(m, t.After)
	}
	return m
}

// Min is the shortest delay any record gets.
func (d Delays) Min() time.Duration {
	m := d.Base
	for _, t := range d.Tail {
		m = min(m, t.After)
	}
	return m
}

// For returns the delay of the record with this EventID: a point in [0, 1) from an FNV-1a hash
// of the id picks the share it falls in, the tail shares first in the order given.
func (d Delays) For(eventID string) time.Duration {
	if len(d.Tail) == 0 {
		return d.Base
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(eventID))
	u := float64(h.Sum64()>>11) / (1 << 53)
	acc := 0.0
	for _, t := range d.Tail {
		acc += t.Fraction
		if u < acc {
			return t.After
		}
	}
	return d.Base
}

// check validates d; errors name the field "deliveryDelay".
func (d Delays) check() error {
	if d.Base < 0 {
		return core.FieldError("deliveryDelay", "must not be negative, got %s", d.Base)
	}
	sum := 0.0
	for _, t := range d.Tail {
		if t.After < 0 {
			return core.FieldError("deliveryDelay", "must not be negative, got %s", t.After)
		}
		if !(t.Fraction > 0 && t.Fraction <= 1) {
			return core.FieldError("deliveryDelay", "%s@%v: the fraction must be above 0 and at most 1", t.After, t.Fraction)
		}
		sum += t.Fraction
	}
	if sum > 1+1e-9 {
		return core.FieldError("deliveryDelay", "the fractions add up to %v, more than 1", sum)
	}
	return nil
}

// ParseDelays reads a delivery delay: a plain duration ("5m": every record 5 minutes late), or a
// duration followed by late shares ("5m,12m@0.1,15m@0.01": a tenth of the records 12 minutes
// late, a hundredth 15, the rest 5). A bad spec gives a *core.Error on field "deliveryDelay".
func ParseDelays(spec string) (Delays, error) {
	parts := strings.Split(spec, ",")
	var d Delays
	for i, part := range parts {
		part = strings.TrimSpace(part)
		durText, fracText, hasFrac := strings.Cut(part, "@")
		if (i == 0) == hasFrac {
			if i == 0 {
				return Delays{}, core.FieldError("deliveryDelay", "%q: the first part is the delay of most records, a plain duration such as 5m", part)
			}
			return Delays{}, core.FieldError("deliveryDelay", "%q: want duration@fraction, such as 12m@0.1", part)
		}
		dur, err := time.ParseDuration(strings.TrimSpace(durText))
		if err != nil {
			return Delays{}, core.FieldError("deliveryDelay", "%q: not a duration (such as 5m)", durText)
		}
		if i == 0 {
			d.Base = dur
			continue
		}
		frac, err := strconv.ParseFloat(strings.TrimSpace(fracText), 64)
		if err != nil || math.IsNaN(frac) {
			return Delays{}, core.FieldError("deliveryDelay", "%q: not a fraction (such as 0.1)", fracText)
		}
		d.Tail = append(d.Tail, DelayShare{After: dur, Fraction: frac})
	}
	if err := d.check(); err != nil {
		return Delays{}, err
	}
	return d, nil
}

// Set implements flag.Value, so that a command takes --delivery-delay 5m,12m@0.1.
func (d *Delays) Set(s string) error {
	v, err := ParseDelays(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
