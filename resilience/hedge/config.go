package hedge

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// Defaults applied by [New] to zero fields of a [Config].
const (
	DefaultName       = "hedge"
	DefaultQuantile   = 0.95
	DefaultMinDelay   = time.Millisecond
	DefaultMaxDelay   = time.Second
	DefaultMinSamples = 20
	DefaultMaxHedges  = 1
	DefaultHalfLife   = 1000
)

// MaxMaxHedges is the largest MaxHedges accepted. gRPC proposal A6 caps
// the attempts of a hedged call, the first included, at 5; this package
// allows 5 hedges after the first attempt.
const MaxMaxHedges = 5

// Config configures a [Hedger]. It is a plain struct that can be decoded
// from JSON; in JSON, durations are strings such as "10ms" (numbers
// of nanoseconds are accepted too). Every zero field means its default, so
// the zero Config sends one hedge after the adaptive p95 latency, clamped
// to [1ms, 1s], and after 1s until 20 latencies have been observed.
// Provider fields are not serialised.
type Config struct {
	// Name identifies the hedger in errors and metrics (the
	// resilience.policy.name attribute) and span events. Default "hedge".
	Name string `json:"name,omitempty"`
	// Delay, if positive, is a fixed hedging delay: Quantile, MinDelay,
	// MaxDelay and MinSamples are then ignored. Default 0: the delay is
	// adaptive, the Quantile of the recent latencies of winning attempts.
	Delay time.Duration `json:"delay,omitempty"`
	// Quantile in (0, 1) is the latency quantile the adaptive delay
	// follows. Default 0.95, as in "The Tail at Scale".
	Quantile float64 `json:"quantile,omitempty"`
	// MinDelay is the smallest adaptive delay. Default 1ms.
	MinDelay time.Duration `json:"min_delay,omitempty"`
	// MaxDelay is the largest adaptive delay, and the delay used until
	// MinSamples latencies have been observed. Default 1s.
	MaxDelay time.Duration `json:"max_delay,omitempty"`
	// MinSamples is the number of latencies observed before the adaptive
	// delay follows Quantile; until then it is MaxDelay. Default 20.
	MinSamples int `json:"min_samples,omitempty"`
	// MaxHedges in [1, 5] is the number of hedged attempts a call may send
	// in addition to the first, one per delay. Default 1.
	MaxHedges int `json:"max_hedges,omitempty"`
	// HalfLife is the number of observations after which a latency weighs
	// half as much in the adaptive delay (see [Quantile]). Default 1000.
	HalfLife int `json:"half_life,omitempty"`
	// MeterProvider provides the meter for the hedger's metrics. Default
	// the global otel.GetMeterProvider().
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("hedge: invalid config: %s = %v: %s", field, value, why))
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Delay", c.Delay}, {"MinDelay", c.MinDelay}, {"MaxDelay", c.MaxDelay}} {
		if f.v < 0 {
			bad(f.name, f.v, "must not be negative")
		}
	}
	if math.IsNaN(c.Quantile) || c.Quantile < 0 || c.Quantile >= 1 {
		bad("Quantile", c.Quantile, "must be in (0, 1)")
	}
	if c.MinSamples < 0 {
		bad("MinSamples", c.MinSamples, "must not be negative")
	}
	if c.MaxHedges < 0 || c.MaxHedges > MaxMaxHedges {
		bad("MaxHedges", c.MaxHedges, "must be in [1, 5]")
	}
	if c.HalfLife < 0 {
		bad("HalfLife", c.HalfLife, "must not be negative")
	}
	if c.MinDelay >= 0 && c.MaxDelay >= 0 {
		if d := c.withDefaults(); d.MinDelay > d.MaxDelay {
			bad("MinDelay", d.MinDelay, fmt.Sprintf("must not exceed MaxDelay (%v)", d.MaxDelay))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Quantile == 0 {
		c.Quantile = DefaultQuantile
	}
	if c.MinDelay == 0 {
		c.MinDelay = DefaultMinDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MinSamples == 0 {
		c.MinSamples = DefaultMinSamples
	}
	if c.MaxHedges == 0 {
		c.MaxHedges = DefaultMaxHedges
	}
	if c.HalfLife == 0 {
		c.HalfLife = DefaultHalfLife
	}
	return c
}

// MarshalJSON encodes c with its durations as strings such as "10ms".
// Provider fields are left out.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Delay    jsonduration.Duration `json:"delay,omitempty"`
		MinDelay jsonduration.Duration `json:"min_delay,omitempty"`
		MaxDelay jsonduration.Duration `json:"max_delay,omitempty"`
	}{plain(c), jsonduration.Duration(c.Delay), jsonduration.Duration(c.MinDelay), jsonduration.Duration(c.MaxDelay)})
}

// UnmarshalJSON decodes c, accepting durations as strings such as "10ms"
// or as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		Delay    *jsonduration.Duration `json:"delay,omitempty"`
		MinDelay *jsonduration.Duration `json:"min_delay,omitempty"`
		MaxDelay *jsonduration.Duration `json:"max_delay,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.Delay), (*jsonduration.Duration)(&c.MinDelay), (*jsonduration.Duration)(&c.MaxDelay)})
	return jsonduration.WithPrefix("hedge", err)
}
