package emulator

import (
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
)

// Option configures an Emulator.
type Option func(*Emulator) error

// WithClock sets the clock that delivery delay, rate limiting and slow faults use (default
// clock.Real). Share one clock.Virtual with the client to replay time without sleeping.
func WithClock(c clock.Clock) Option {
	return func(e *Emulator) error {
		if c == nil {
			return core.FieldError("clock", "must not be nil")
		}
		e.clk = c
		return nil
	}
}

// WithDeliveryDelay makes each record visible only once the clock reaches its eventTime + d, as
// CloudTrail delivers events minutes after the call (default 0).
func WithDeliveryDelay(d time.Duration) Option { return WithDeliveryDelays(FixedDelay(d)) }

// WithDeliveryDelays makes each record visible only once the clock reaches its eventTime plus
// its own delay from d (see Delays.For), so that some records arrive later than others.
func WithDeliveryDelays(d Delays) Option {
	return func(e *Emulator) error {
		if err := d.check(); err != nil {
			return err
		}
		e.delay = d
		return nil
	}
}

// WithRate sets the calls per second allowed per access key and region (default 2, AWS's limit);
// 0 turns rate limiting off. The bucket holds ceil(perSecond) calls unless WithBurst says otherwise.
func WithRate(perSecond float64) Option {
	return func(e *Emulator) error {
		if perSecond < 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
			return core.FieldError("rate", "must be a number of calls per second >= 0, got %v", perSecond)
		}
		if perSecond == 0 {
			e.limit = rate.Inf
		} else {
			e.limit = rate.Limit(perSecond)
		}
		return nil
	}
}

// WithBurst sets the token bucket's size: how many calls may come at once after a pause.
func WithBurst(n int) Option {
	return func(e *Emulator) error {
		if n < 1 {
			return core.FieldError("burst", "must be at least 1, got %d", n)
		}
		e.burst = n
		return nil
	}
}

// WithFaults injects faults (see ParseFaults).
func WithFaults(f Faults) Option {
	return func(e *Emulator) error {
		for name, v := range map[string]float64{"throttle": f.Throttle, "error": f.Error, "dup": f.Dup} {
			if v < 0 || v > 1 || math.IsNaN(v) {
				return core.FieldError("faults", "%s=%v: want a fraction between 0 and 1", name, v)
			}
		}
		if f.Slow < 0 {
			return core.FieldError("faults", "slow=%s: must not be negative", f.Slow)
		}
		e.faults = f
		return nil
	}
}

// WithKeys restricts the emulator to these access keys; without it any key is accepted.
func WithKeys(keys ...Key) Option {
	return func(e *Emulator) error {
		e.keys = map[string]Key{}
		for _, k := range keys {
			if k.AccessKeyID == "" {
				return core.FieldError("keys", "an access key id is empty")
			}
			e.keys[k.AccessKeyID] = k
		}
		return nil
	}
}

// WithVerifier sets the signature check run on each call (see Verifier). By default, with keys
// (WithKeys), SigV4Verifier checks every signature; nil turns the check off.
func WithVerifier(v Verifier) Option {
	return func(e *Emulator) error { e.verify, e.verifySet = v, true; return nil }
}

// WithRegionFilter, when on (the default), serves a call only the records whose awsRegion is the
// region the call was signed for, as CloudTrail does; see WithAnyRegion.
func WithRegionFilter(on bool) Option {
	return func(e *Emulator) error { e.regionFilter = on; return nil }
}

// WithSeed fixes the random source of injected faults and of NextToken signing, so that a test
// sees the same faults and tokens on every run. Without it both are random.
func WithSeed(seed uint64) Option {
	return func(e *Emulator) error { e.seed(seed); return nil }
}

// WithLogger logs each call at debug level and faults at info (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(e *Emulator) error {
		if l != nil {
			e.log = l
		}
		return nil
	}
}
