package shed

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
	DefaultName         = "shed"
	DefaultCPUThreshold = 0.9
	DefaultWindow       = 5 * time.Second
	DefaultBuckets      = 50
	DefaultCoolOff      = time.Second
)

// maxBuckets bounds Buckets: every overloaded admission scans them all.
const maxBuckets = 10000

// minBucket is the shortest bucket duration (Window/Buckets) allowed.
const minBucket = time.Millisecond

// Config configures a [Shedder]. It is a plain struct that can be decoded
// from JSON; in JSON, durations are strings such as "5s" (numbers
// of nanoseconds are accepted too). Every zero field means its default.
// The CPU and provider fields are not serialised.
type Config struct {
	// Name identifies the shedder in errors and metrics (the
	// resilience.policy.name attribute). Default "shed".
	Name string `json:"name,omitempty"`
	// CPUThreshold is the CPU usage, in [0, 1], at or above which the
	// server counts as overloaded. Default 0.9.
	CPUThreshold float64 `json:"cpu_threshold,omitempty"`
	// Window is the span of recent history used for the Little's-law
	// estimate. Default 5s.
	Window time.Duration `json:"window,omitempty"`
	// Buckets is the number of buckets Window is divided into. Default
	// 50; Window/Buckets must be at least 1ms.
	Buckets int `json:"buckets,omitempty"`
	// CoolOff is how long the server still counts as overloaded after a
	// request was shed for exceeding the estimate, even if CPU usage has
	// dropped. Default 1s.
	CoolOff time.Duration `json:"cool_off,omitempty"`
	// CPU is the CPU usage signal. Default: a sampler of the cgroup's or
	// the machine's CPU usage, read every 250ms by a goroutine that
	// [Shedder.Close] stops.
	CPU CPU `json:"-"`
	// MeterProvider provides the meter for the shedder's metrics. Default
	// the global otel.GetMeterProvider().
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("shed: invalid config: %s = %v: %s", field, value, why))
	}
	if math.IsNaN(c.CPUThreshold) || c.CPUThreshold < 0 || c.CPUThreshold > 1 {
		bad("CPUThreshold", c.CPUThreshold, "must be in [0, 1]")
	}
	if c.Window < 0 {
		bad("Window", c.Window, "must not be negative")
	}
	switch {
	case c.Buckets < 0:
		bad("Buckets", c.Buckets, "must not be negative")
	case c.Buckets > maxBuckets:
		bad("Buckets", c.Buckets, fmt.Sprintf("must be at most %d", maxBuckets))
	}
	if c.CoolOff < 0 {
		bad("CoolOff", c.CoolOff, "must not be negative")
	}
	if c.Window >= 0 && c.Buckets >= 0 && c.Buckets <= maxBuckets {
		d := c.withDefaults()
		if b := d.Window / time.Duration(d.Buckets); b < minBucket {
			bad("Window", d.Window, fmt.Sprintf("divided into %d buckets gives %v, less than %v", d.Buckets, b, minBucket))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.CPUThreshold == 0 {
		c.CPUThreshold = DefaultCPUThreshold
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Buckets == 0 {
		c.Buckets = DefaultBuckets
	}
	if c.CoolOff == 0 {
		c.CoolOff = DefaultCoolOff
	}
	return c
}

// MarshalJSON encodes c with Window and CoolOff as strings such as "5s".
// The CPU and provider fields are left out.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Window  jsonduration.Duration `json:"window,omitempty"`
		CoolOff jsonduration.Duration `json:"cool_off,omitempty"`
	}{plain(c), jsonduration.Duration(c.Window), jsonduration.Duration(c.CoolOff)})
}

// UnmarshalJSON decodes c, accepting Window and CoolOff as strings such
// as "5s" or as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		Window  *jsonduration.Duration `json:"window,omitempty"`
		CoolOff *jsonduration.Duration `json:"cool_off,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.Window), (*jsonduration.Duration)(&c.CoolOff)})
	return jsonduration.WithPrefix("shed", err)
}
