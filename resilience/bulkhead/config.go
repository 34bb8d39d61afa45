package bulkhead

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
	DefaultName          = "bulkhead"
	DefaultMaxConcurrent = 10
	DefaultMaxQueue      = 0
	DefaultMaxWait       = time.Duration(0)
)

// maxLimit bounds MaxConcurrent and MaxQueue: both are packed into one
// 64-bit word.
const maxLimit = math.MaxInt32

// Config configures a [Bulkhead]. It is a plain struct that can be decoded
// from JSON; in JSON, durations are strings such as "250ms"
// (numbers of nanoseconds are accepted too). Every zero field means its
// default, so the zero Config admits 10 concurrent calls and rejects the
// 11th at once. Provider fields are not serialised.
type Config struct {
	// Name identifies the bulkhead in errors and metrics (the
	// resilience.policy.name attribute). Default "bulkhead".
	Name string `json:"name,omitempty"`
	// MaxConcurrent is the number of calls admitted at once. Default 10.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// MaxQueue is the number of callers that may wait for a slot; a caller
	// that finds it full is rejected at once. Default 0: no queue.
	MaxQueue int `json:"max_queue,omitempty"`
	// MaxWait is how long a queued caller waits for a slot before it is
	// rejected. Default 0: until its context ends.
	MaxWait time.Duration `json:"max_wait,omitempty"`
	// MeterProvider provides the meter for the bulkhead's metrics. Default
	// the global otel.GetMeterProvider().
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("bulkhead: invalid config: %s = %v: %s", field, value, why))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxConcurrent", c.MaxConcurrent}, {"MaxQueue", c.MaxQueue}} {
		switch {
		case f.v < 0:
			bad(f.name, f.v, "must not be negative")
		case f.v > maxLimit:
			bad(f.name, f.v, fmt.Sprintf("must be at most %d", maxLimit))
		}
	}
	if c.MaxWait < 0 {
		bad("MaxWait", c.MaxWait, "must not be negative")
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	return c
}

// MarshalJSON encodes c with MaxWait as a string such as "250ms". The
// provider field is left out.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		MaxWait jsonduration.Duration `json:"max_wait,omitempty"`
	}{plain(c), jsonduration.Duration(c.MaxWait)})
}

// UnmarshalJSON decodes c, accepting MaxWait as a string such as "250ms"
// or as a number of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		MaxWait *jsonduration.Duration `json:"max_wait,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.MaxWait)})
	return jsonduration.WithPrefix("bulkhead", err)
}
