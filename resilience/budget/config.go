package budget

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// Algorithms for [Config.Algorithm].
const (
	AlgorithmGRPC    = "grpc"
	AlgorithmPercent = "percent"
)

// Defaults applied by [New] to zero fields of a [Config].
const (
	DefaultName         = "budget"
	DefaultAlgorithm    = AlgorithmGRPC
	DefaultMaxTokens    = 10.0
	DefaultTokenRatio   = 0.1
	DefaultPercent      = 0.2
	DefaultMinPerSecond = 10.0
	DefaultTTL          = 10 * time.Second
)

// Limits of the configuration values.
const (
	// MaxMaxTokens is the largest MaxTokens gRPC accepts.
	MaxMaxTokens = 1000.0
	// MaxPercent is the largest Percent Finagle accepts.
	MaxPercent = 1000.0
)

// buckets is the number of buckets the TTL window of a [Percent] budget is
// split into, as in Finagle's WindowedAdder.
const buckets = 10

// Config configures a [Budget]. It is a plain struct that can be decoded
// from JSON; in JSON, durations are strings such as "10s" (numbers
// of nanoseconds are accepted too). Every zero field means its default, so
// the zero Config is a gRPC A6 budget with 10 tokens and a token ratio of
// 0.1. Fields of the other algorithm are ignored. Provider fields are not
// serialised.
type Config struct {
	// Name identifies the budget in metrics (the resilience.policy.name
	// attribute). Default "budget".
	Name string `json:"name,omitempty"`
	// Algorithm is "grpc" (default) for gRPC A6 retry throttling or
	// "percent" for Finagle's RetryBudget.
	Algorithm string `json:"algorithm,omitempty"`
	// MaxTokens in (0, 1000] is the grpc token count at start and its
	// maximum. gRPC requires it explicitly; here it defaults to 10. It is
	// rounded to three decimal places.
	MaxTokens float64 `json:"max_tokens,omitempty"`
	// TokenRatio > 0 is the number of grpc tokens a success adds. It is
	// rounded to three decimal places, as gRPC does. Default 0.1.
	TokenRatio float64 `json:"token_ratio,omitempty"`
	// Percent in (0, 1000] is the fraction of requests that may be retried
	// by the percent algorithm: 0.2 lets one retry through per five
	// requests. It is rounded to three decimal places. Default 0.2.
	Percent float64 `json:"percent,omitempty"`
	// MinPerSecond > 0 is the number of retries per second the percent
	// algorithm allows regardless of traffic: a reserve of
	// MinPerSecond*TTL retries. Default 10.
	MinPerSecond float64 `json:"min_per_second,omitempty"`
	// TTL is how long the percent algorithm remembers deposits and
	// withdrawals, between 1s and 60s as in Finagle. Default 10s.
	TTL time.Duration `json:"ttl,omitempty"`
	// MeterProvider provides the meter for the budget's metrics. Default
	// the global otel.GetMeterProvider().
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("budget: invalid config: %s = %v: %s", field, value, why))
	}
	switch c.Algorithm {
	case "", AlgorithmGRPC, AlgorithmPercent:
	default:
		bad("Algorithm", fmt.Sprintf("%q", c.Algorithm), `must be "grpc" or "percent"`)
	}
	if math.IsNaN(c.MaxTokens) || c.MaxTokens < 0 || c.MaxTokens > MaxMaxTokens || (c.MaxTokens != 0 && math.Round(c.MaxTokens*1000) == 0) {
		bad("MaxTokens", c.MaxTokens, "must be in (0, 1000]")
	}
	if math.IsNaN(c.TokenRatio) || c.TokenRatio < 0 || c.TokenRatio > MaxMaxTokens || (c.TokenRatio != 0 && math.Round(c.TokenRatio*1000) == 0) {
		bad("TokenRatio", c.TokenRatio, "must be in [0.001, 1000]")
	}
	if math.IsNaN(c.Percent) || c.Percent < 0 || c.Percent > MaxPercent || (c.Percent != 0 && math.Round(c.Percent*1000) == 0) {
		bad("Percent", c.Percent, "must be in [0.001, 1000]")
	}
	if math.IsNaN(c.MinPerSecond) || c.MinPerSecond < 0 || c.MinPerSecond > 1e9 {
		bad("MinPerSecond", c.MinPerSecond, "must be in (0, 1e9]")
	}
	if c.TTL != 0 && (c.TTL < time.Second || c.TTL > time.Minute) {
		bad("TTL", c.TTL, "must be between 1s and 1m0s")
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.TokenRatio == 0 {
		c.TokenRatio = DefaultTokenRatio
	}
	if c.Percent == 0 {
		c.Percent = DefaultPercent
	}
	if c.MinPerSecond == 0 {
		c.MinPerSecond = DefaultMinPerSecond
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	return c
}

// MarshalJSON encodes c with its durations as strings such as "10s".
// Provider fields are left out.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		TTL jsonduration.Duration `json:"ttl,omitempty"`
	}{plain(c), jsonduration.Duration(c.TTL)})
}

// UnmarshalJSON decodes c, accepting durations as strings such as "10s" or
// as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		TTL *jsonduration.Duration `json:"ttl,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.TTL)})
	return jsonduration.WithPrefix("budget", err)
}
