package adaptive

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// Algorithm names, the values of [Config.Algorithm].
const (
	AlgorithmAIMD      = "aimd"
	AlgorithmGradient2 = "gradient2"
	AlgorithmVegas     = "vegas"
)

// Defaults applied by [New] to zero fields of a [Config]; the algorithm
// parameters take the defaults of the algorithm types.
const (
	DefaultName      = "adaptive"
	DefaultAlgorithm = AlgorithmAIMD
)

// Config configures a [Limiter]. It is a plain struct that can be decoded
// from JSON; in JSON, durations are strings such as "250ms"
// (numbers of nanoseconds are accepted too). Every zero field means its
// default, so the zero Config is an AIMD limiter starting at 20 calls.
// Each algorithm reads only its own parameters. Provider fields are not
// serialised.
type Config struct {
	// Name identifies the limiter in metrics (the resilience.policy.name
	// attribute). Default "adaptive".
	Name string `json:"name,omitempty"`
	// Algorithm is "aimd" (default, [AIMD]), "gradient2" ([Gradient2]) or
	// "vegas" ([Vegas]).
	Algorithm string `json:"algorithm,omitempty"`
	// InitialLimit is the limit before any sample. Default 20, clamped
	// into [MinLimit, MaxLimit].
	InitialLimit int `json:"initial_limit,omitempty"`
	// MinLimit is the lowest limit. Default 1.
	MinLimit int `json:"min_limit,omitempty"`
	// MaxLimit is the highest limit. Default 200.
	MaxLimit int `json:"max_limit,omitempty"`
	// BackoffRatio in (0, 1) multiplies the AIMD limit on a drop.
	// Default 0.9.
	BackoffRatio float64 `json:"backoff_ratio,omitempty"`
	// Timeout is the RTT above which AIMD treats a call as dropped.
	// Default 5s.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Smoothing in (0, 1] weighs each new Gradient2 or Vegas limit
	// against the old one. Default 0.2 for Gradient2, 1 for Vegas.
	Smoothing float64 `json:"smoothing,omitempty"`
	// LongWindow is the number of samples Gradient2's long RTT averages
	// over. Default 600.
	LongWindow int `json:"long_window,omitempty"`
	// RTTTolerance >= 1 is how much Gradient2's short RTT may exceed the
	// long one before the limit shrinks. Default 1.5.
	RTTTolerance float64 `json:"rtt_tolerance,omitempty"`
	// ProbeInterval is the number of samples between Vegas's
	// re-measurements of the minimum RTT. Default 1000.
	ProbeInterval int `json:"probe_interval,omitempty"`
	// ProbeJitter in [0, 1) varies each Vegas probe interval by up to this
	// fraction either way. Default 0: no jitter.
	ProbeJitter float64 `json:"probe_jitter,omitempty"`
	// MeterProvider provides the meter for the limiter's metrics. Default
	// the global otel.GetMeterProvider().
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("adaptive: invalid config: %s = %v: %s", field, value, why))
	}
	switch c.Algorithm {
	case "", AlgorithmAIMD, AlgorithmGradient2, AlgorithmVegas:
	default:
		bad("Algorithm", fmt.Sprintf("%q", c.Algorithm), `must be "aimd", "gradient2" or "vegas"`)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"InitialLimit", c.InitialLimit}, {"MinLimit", c.MinLimit}, {"MaxLimit", c.MaxLimit}, {"LongWindow", c.LongWindow}, {"ProbeInterval", c.ProbeInterval}} {
		if f.v < 0 {
			bad(f.name, f.v, "must not be negative")
		}
	}
	if c.MinLimit > 0 && c.MaxLimit > 0 && c.MinLimit > c.MaxLimit {
		bad("MinLimit", c.MinLimit, fmt.Sprintf("must not exceed MaxLimit %d", c.MaxLimit))
	}
	if c.BackoffRatio < 0 || c.BackoffRatio >= 1 {
		bad("BackoffRatio", c.BackoffRatio, "must be in (0, 1)")
	}
	if c.Timeout < 0 {
		bad("Timeout", c.Timeout, "must not be negative")
	}
	if c.Smoothing < 0 || c.Smoothing > 1 {
		bad("Smoothing", c.Smoothing, "must be in (0, 1]")
	}
	if c.RTTTolerance != 0 && c.RTTTolerance < 1 {
		bad("RTTTolerance", c.RTTTolerance, "must be at least 1")
	}
	if c.ProbeJitter < 0 || c.ProbeJitter >= 1 {
		bad("ProbeJitter", c.ProbeJitter, "must be in [0, 1)")
	}
	return errors.Join(errs...)
}

// withDefaults returns c with Name and Algorithm set to their defaults if
// zero; the algorithm fills in its own parameters.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	return c
}

// algorithm returns the Algorithm c selects, configured by c.
func (c Config) algorithm() Algorithm {
	switch c.Algorithm {
	case AlgorithmGradient2:
		return &Gradient2{Initial: c.InitialLimit, Min: c.MinLimit, Max: c.MaxLimit,
			Smoothing: c.Smoothing, LongWindow: c.LongWindow, RTTTolerance: c.RTTTolerance}
	case AlgorithmVegas:
		return &Vegas{Initial: c.InitialLimit, Min: c.MinLimit, Max: c.MaxLimit,
			Smoothing: c.Smoothing, ProbeInterval: c.ProbeInterval, ProbeJitter: c.ProbeJitter}
	default:
		return &AIMD{Initial: c.InitialLimit, Min: c.MinLimit, Max: c.MaxLimit,
			BackoffRatio: c.BackoffRatio, Timeout: c.Timeout}
	}
}

// MarshalJSON encodes c with Timeout as a string such as "250ms". The
// provider field is left out.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Timeout jsonduration.Duration `json:"timeout,omitempty"`
	}{plain(c), jsonduration.Duration(c.Timeout)})
}

// UnmarshalJSON decodes c, accepting Timeout as a string such as "250ms"
// or as a number of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		Timeout *jsonduration.Duration `json:"timeout,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.Timeout)})
	return jsonduration.WithPrefix("adaptive", err)
}
