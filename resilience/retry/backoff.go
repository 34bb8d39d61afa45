package retry

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// Backoff kinds for [Backoff.Kind].
const (
	KindConstant    = "constant"
	KindLinear      = "linear"
	KindExponential = "exponential"
)

// Jitter types for [Backoff.Jitter].
const (
	JitterNone         = "none"
	JitterFull         = "full"
	JitterEqual        = "equal"
	JitterDecorrelated = "decorrelated"
)

// Defaults applied by [Backoff.Delay] to zero fields of a [Backoff].
const (
	DefaultKind       = KindExponential
	DefaultInitial    = 100 * time.Millisecond
	DefaultMultiplier = 2.0
	DefaultJitter     = JitterNone
)

// maxDuration is the largest time.Duration, the cap when Max is zero.
const maxDuration = time.Duration(math.MaxInt64)

// Backoff describes the delays between attempts. It is a plain struct that
// can be decoded from JSON; in JSON, durations are strings such as
// "250ms" (numbers of nanoseconds are accepted too). Every zero field means
// its default, so the zero Backoff doubles a 100ms delay without limit and
// without jitter.
type Backoff struct {
	// Kind is "constant" (always Initial), "linear" (Initial times the
	// retry number) or "exponential" (Initial times Multiplier to the
	// power of the retry number minus one; the default).
	Kind string `json:"kind,omitempty"`
	// Initial is the delay before the first retry. Default 100ms.
	Initial time.Duration `json:"initial,omitempty"`
	// Max caps every delay, jitter included. Default 0: no cap other than
	// the largest time.Duration.
	Max time.Duration `json:"max,omitempty"`
	// Multiplier >= 1 is the growth factor of exponential backoff.
	// Default 2.
	Multiplier float64 `json:"multiplier,omitempty"`
	// Jitter is "none" (default), "full", "equal" or "decorrelated". With
	// "decorrelated" Kind and Multiplier are ignored: each delay is drawn
	// between Initial and three times the previous delay.
	Jitter string `json:"jitter,omitempty"`
}

// Validate reports every invalid field of b, naming the field and its
// value. Zero fields are valid: they mean the default.
func (b Backoff) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("retry: invalid backoff: %s = %v: %s", field, value, why))
	}
	switch b.Kind {
	case "", KindConstant, KindLinear, KindExponential:
	default:
		bad("Kind", fmt.Sprintf("%q", b.Kind), `must be "constant", "linear" or "exponential"`)
	}
	switch b.Jitter {
	case "", JitterNone, JitterFull, JitterEqual, JitterDecorrelated:
	default:
		bad("Jitter", fmt.Sprintf("%q", b.Jitter), `must be "none", "full", "equal" or "decorrelated"`)
	}
	if b.Initial < 0 {
		bad("Initial", b.Initial, "must not be negative")
	}
	if b.Max < 0 {
		bad("Max", b.Max, "must not be negative")
	}
	if b.Max > 0 && b.Initial > b.Max {
		bad("Initial", b.Initial, fmt.Sprintf("must not exceed Max (%v)", b.Max))
	}
	if b.Multiplier != 0 && !(b.Multiplier >= 1 && b.Multiplier <= math.MaxFloat64) {
		bad("Multiplier", b.Multiplier, "must be at least 1 and finite")
	}
	return errors.Join(errs...)
}

// Delay returns the wait before attempt n, where n = 1 is the first retry
// (n < 1 counts as 1), given the previous delay prev (used only by
// decorrelated jitter; pass 0 before the first retry). rnd returns random
// numbers in [0, 1); nil means math/rand/v2's Float64. The result is never
// negative and never exceeds Max when Max > 0; Delay does not validate b,
// but does not panic or overflow on invalid values either.
func (b Backoff) Delay(n int, prev time.Duration, rnd func() float64) time.Duration {
	initial := b.Initial
	if initial == 0 {
		initial = DefaultInitial
	}
	initial = max(initial, 0)
	ceil := b.Max
	if ceil <= 0 {
		ceil = maxDuration
	}
	initial = min(initial, ceil)
	n = max(n, 1)
	if rnd == nil {
		rnd = rand.Float64
	}
	switch b.Jitter {
	case JitterFull:
		return scale(b.base(n, initial, ceil), rnd())
	case JitterEqual:
		d := b.base(n, initial, ceil)
		return d/2 + scale(d-d/2, rnd())
	case JitterDecorrelated:
		hi := ceil
		if prev < ceil/3 {
			hi = prev * 3
		}
		hi = max(hi, initial)
		return initial + scale(hi-initial, rnd())
	default:
		return b.base(n, initial, ceil)
	}
}

// base returns the delay before retry n >= 1 without jitter, capped at
// ceil > 0.
func (b Backoff) base(n int, initial, ceil time.Duration) time.Duration {
	switch b.Kind {
	case KindConstant:
		return initial
	case KindLinear:
		if initial == 0 {
			return 0
		}
		if int64(n) > int64(ceil/initial) {
			return ceil
		}
		return min(initial*time.Duration(n), ceil)
	default:
		m := b.Multiplier
		if m == 0 {
			m = DefaultMultiplier
		}
		f := float64(initial) * math.Pow(m, float64(n-1))
		if math.IsNaN(f) || f >= float64(ceil) {
			return ceil
		}
		if f <= 0 {
			return 0
		}
		return min(time.Duration(f), ceil)
	}
}

// scale returns d*f for f in [0, 1], clamping f into it (NaN counts as 0).
func scale(d time.Duration, f float64) time.Duration {
	if !(f > 0) {
		return 0
	}
	if f >= 1 {
		return d
	}
	r := float64(d) * f
	if r >= float64(d) {
		return d
	}
	return time.Duration(r)
}

// MarshalJSON encodes b with its durations as strings such as "250ms".
func (b Backoff) MarshalJSON() ([]byte, error) {
	type plain Backoff
	return json.Marshal(struct {
		plain
		Initial jsonduration.Duration `json:"initial,omitempty"`
		Max     jsonduration.Duration `json:"max,omitempty"`
	}{plain(b), jsonduration.Duration(b.Initial), jsonduration.Duration(b.Max)})
}

// UnmarshalJSON decodes b, accepting durations as strings such as "250ms"
// or as numbers of nanoseconds. It does not validate b.
func (b *Backoff) UnmarshalJSON(data []byte) error {
	type plain Backoff
	err := json.Unmarshal(data, &struct {
		*plain
		Initial *jsonduration.Duration `json:"initial,omitempty"`
		Max     *jsonduration.Duration `json:"max,omitempty"`
	}{(*plain)(b), (*jsonduration.Duration)(&b.Initial), (*jsonduration.Duration)(&b.Max)})
	return jsonduration.WithPrefix("retry", err)
}
