package circuitbreaker

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// Window types for [Config.Window].
const (
	WindowCount = "count"
	WindowTime  = "time"
)

// Defaults applied by [New] to zero fields of a [Config].
const (
	DefaultName                 = "circuitbreaker"
	DefaultWindowSize           = 100
	DefaultWindowDuration       = 60 * time.Second
	DefaultBuckets              = 10
	DefaultMinimumCalls         = 10
	DefaultFailureRateThreshold = 0.5
	DefaultHalfOpenProbes       = 5
	DefaultOpenDuration         = 30 * time.Second
)

// Config configures a [Breaker]. It is a plain struct that can be decoded
// from JSON; in JSON, durations are strings such as "30s" or "1m30s"
// (numbers of nanoseconds are accepted too). Every zero field means its default, so the zero Config is a
// count-based breaker over the last 100 calls that opens at a 50% failure
// rate for 30 seconds. Function and provider fields are not serialised.
type Config struct {
	// Name identifies the breaker in errors, metrics (the
	// resilience.policy.name attribute) and span events. Default
	// "circuitbreaker".
	Name string `json:"name,omitempty"`
	// Window is the sliding window type: "count" (default) records the last
	// WindowSize calls, "time" the calls of the last WindowDuration.
	Window string `json:"window,omitempty"`
	// WindowSize is the number of calls a count window holds. Default 100.
	WindowSize int `json:"window_size,omitempty"`
	// WindowDuration is the length of a time window. Default 60s.
	WindowDuration time.Duration `json:"window_duration,omitempty"`
	// Buckets is the number of buckets a time window is split into; whole
	// buckets expire at once, so outcomes are kept between
	// WindowDuration*(Buckets-1)/Buckets and WindowDuration. Default 10.
	Buckets int `json:"buckets,omitempty"`
	// MinimumCalls is the number of outcomes the window must hold before
	// the breaker can open; a count window caps it at WindowSize.
	// Default 10.
	MinimumCalls int `json:"minimum_calls,omitempty"`
	// FailureRateThreshold in (0, 1] is the failure rate at or above which
	// the breaker opens. Default 0.5.
	FailureRateThreshold float64 `json:"failure_rate_threshold,omitempty"`
	// SlowCallRateThreshold in (0, 1] is the slow-call rate at or above
	// which the breaker opens. Default 1 (every call slow).
	SlowCallRateThreshold float64 `json:"slow_call_rate_threshold,omitempty"`
	// SlowCallDuration is the latency at or above which a call counts as
	// slow, whether it succeeded or failed. Default 0: no call is slow.
	SlowCallDuration time.Duration `json:"slow_call_duration,omitempty"`
	// HalfOpenProbes is both the number of calls let through at once in
	// the half-open state and the number of their outcomes that decide
	// between closing and opening again. Default 5.
	HalfOpenProbes int `json:"half_open_probes,omitempty"`
	// OpenDuration is how long the breaker stays open before it lets
	// probes through. Default 30s. OpenDurationFunc overrides it.
	OpenDuration time.Duration `json:"open_duration,omitempty"`
	// OpenDurationFunc, if set, returns the open duration for the opens-th
	// consecutive opening (1 when opening from closed, 2 after the first
	// failed half-open round, ...), for exponential backoff or to honour a
	// Retry-After carried by cause, the error of the call that opened the
	// breaker (nil when slow successes opened it). A result below zero is
	// treated as zero. It is called with the breaker's lock held and must
	// not call the breaker.
	OpenDurationFunc func(opens int, cause error) time.Duration `json:"-"`
	// IsFailure reports whether a non-nil error counts as a failure; a nil
	// error is always a success. Default: every non-nil error fails.
	IsFailure func(error) bool `json:"-"`
	// IsExcluded reports whether a non-nil error is excluded: the call is
	// not recorded at all (it frees its half-open slot). It is consulted
	// before IsFailure. Default: errors.Is(err, context.Canceled).
	IsExcluded func(error) bool `json:"-"`
	// OnStateChange, if set, is called after each state transition,
	// outside the breaker's lock and in transition order. When
	// transitions race, a goroutine may deliver another goroutine's
	// transition; a transition caused from inside OnStateChange is
	// delivered after it returns. Default nil.
	OnStateChange func(from, to State) `json:"-"`
	// MeterProvider provides the meter for the breaker's metrics. Default
	// the global otel.GetMeterProvider().
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("circuitbreaker: invalid config: %s = %v: %s", field, value, why))
	}
	switch c.Window {
	case "", WindowCount, WindowTime:
	default:
		bad("Window", fmt.Sprintf("%q", c.Window), `must be "count" or "time"`)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"WindowSize", c.WindowSize}, {"Buckets", c.Buckets}, {"MinimumCalls", c.MinimumCalls}, {"HalfOpenProbes", c.HalfOpenProbes}} {
		if f.v < 0 {
			bad(f.name, f.v, "must not be negative")
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"WindowDuration", c.WindowDuration}, {"SlowCallDuration", c.SlowCallDuration}, {"OpenDuration", c.OpenDuration}} {
		if f.v < 0 {
			bad(f.name, f.v, "must not be negative")
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"FailureRateThreshold", c.FailureRateThreshold}, {"SlowCallRateThreshold", c.SlowCallRateThreshold}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			bad(f.name, f.v, "must be in (0, 1]")
		}
	}
	if c.Window == WindowTime && c.WindowDuration >= 0 && c.Buckets >= 0 {
		d := c.withDefaults()
		if d.WindowDuration < time.Duration(d.Buckets) {
			bad("WindowDuration", d.WindowDuration, fmt.Sprintf("must be at least Buckets (%d) nanoseconds", d.Buckets))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Window == "" {
		c.Window = WindowCount
	}
	if c.WindowSize == 0 {
		c.WindowSize = DefaultWindowSize
	}
	if c.WindowDuration == 0 {
		c.WindowDuration = DefaultWindowDuration
	}
	if c.Buckets == 0 {
		c.Buckets = DefaultBuckets
	}
	if c.MinimumCalls == 0 {
		c.MinimumCalls = DefaultMinimumCalls
	}
	if c.FailureRateThreshold == 0 {
		c.FailureRateThreshold = DefaultFailureRateThreshold
	}
	if c.SlowCallRateThreshold == 0 {
		c.SlowCallRateThreshold = 1
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if c.OpenDuration == 0 {
		c.OpenDuration = DefaultOpenDuration
	}
	return c
}

// MarshalJSON encodes c with its durations as strings such as "30s".
// Function and provider fields are left out.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		WindowDuration   jsonduration.Duration `json:"window_duration,omitempty"`
		SlowCallDuration jsonduration.Duration `json:"slow_call_duration,omitempty"`
		OpenDuration     jsonduration.Duration `json:"open_duration,omitempty"`
	}{plain(c), jsonduration.Duration(c.WindowDuration), jsonduration.Duration(c.SlowCallDuration), jsonduration.Duration(c.OpenDuration)})
}

// UnmarshalJSON decodes c, accepting durations as strings such as "30s" or
// as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		WindowDuration   *jsonduration.Duration `json:"window_duration,omitempty"`
		SlowCallDuration *jsonduration.Duration `json:"slow_call_duration,omitempty"`
		OpenDuration     *jsonduration.Duration `json:"open_duration,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.WindowDuration), (*jsonduration.Duration)(&c.SlowCallDuration), (*jsonduration.Duration)(&c.OpenDuration)})
	return jsonduration.WithPrefix("circuitbreaker", err)
}
