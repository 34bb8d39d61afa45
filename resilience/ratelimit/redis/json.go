package redisratelimit

import (
	"encoding/json"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// MarshalJSON encodes c with Per and Timeout as strings such as "1s".
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Per     jsonduration.Duration `json:"per,omitempty"`
		Timeout jsonduration.Duration `json:"timeout,omitempty"`
	}{plain(c), jsonduration.Duration(c.Per), jsonduration.Duration(c.Timeout)})
}

// UnmarshalJSON decodes c, accepting Per and Timeout as strings such as
// "1m" or as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		Per     *jsonduration.Duration `json:"per,omitempty"`
		Timeout *jsonduration.Duration `json:"timeout,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.Per), (*jsonduration.Duration)(&c.Timeout)})
	return jsonduration.WithPrefix("redisratelimit", err)
}
