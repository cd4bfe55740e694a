package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// Faults are failures the emulator injects on purpose, so that clients are tested against the
// ways the real service misbehaves. Fractions are in [0, 1].
type Faults struct {
	Throttle float64       // fraction of calls answered ThrottlingException, beyond the rate limit
	Error    float64       // fraction of calls answered HTTP 500 InternalFailure
	Slow     time.Duration // every call first sleeps this long on the emulator's clock
	Dup      float64       // fraction of follow-up pages that repeat an event of the previous page
}

// IsZero reports whether no fault is injected.
func (f Faults) IsZero() bool { return f == Faults{} }

// String renders f in the form ParseFaults reads ("" when there is no fault).
func (f Faults) String() string {
	var parts []string
	num := func(k string, v float64) {
		if v != 0 {
			parts = append(parts, k+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	num("throttle", f.Throttle)
	num("error", f.Error)
	if f.Slow != 0 {
		parts = append(parts, "slow="+f.Slow.String())
	}
	num("dup", f.Dup)
	return strings.Join(parts, ",")
}

// ParseFaults reads a fault spec such as "throttle=0.3,error=0.1,slow=2s,dup=0.1". An empty spec
// injects nothing. A bad spec gives a *core.Error on field "faults" naming the bad key or value.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		key, val = strings.TrimSpace(strings.ToLower(key)), strings.TrimSpace(val)
		if !ok || val == "" {
			return Faults{}, core.FieldError("faults", "%q: want key=value (throttle, error, dup: a fraction 0..1; slow: a duration)", part)
		}
		if seen[key] {
			return Faults{}, core.FieldError("faults", "%q given twice", key)
		}
		seen[key] = true
		switch key {
		case "throttle", "error", "dup":
			v, err := strconv.ParseFloat(val, 64)
			if err != nil || v < 0 || v > 1 {
				return Faults{}, core.FieldError("faults", "%s=%s: want a fraction between 0 and 1", key, val)
			}
			switch key {
			case "throttle":
				f.Throttle = v
			case "error":
				f.Error = v
			default:
				f.Dup = v
			}
		case "slow":
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return Faults{}, core.FieldError("faults", "slow=%s: want a duration such as 2s or 500ms", val)
			}
			f.Slow = d
		default:
			return Faults{}, core.FieldError("faults", "unknown fault %q (known: throttle, error, slow, dup)", key)
		}
	}
	return f, nil
}

// Set makes *Faults a flag.Value, so a CLI can take --faults SPEC directly.
func (f *Faults) Set(spec string) error {
	v, err := ParseFaults(spec)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Type names the flag value for pflag-style help.
func (f *Faults) Type() string { return "faults" }

var _ fmt.Stringer = Faults{}
