package ratelimit

import (
	"encoding/json"

	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// MarshalJSON encodes c with Per and Window as strings such as "1s".
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Per    jsonduration.Duration `json:"per,omitempty"`
		Window jsonduration.Duration `json:"window,omitempty"`
	}{plain(c), jsonduration.Duration(c.Per), jsonduration.Duration(c.Window)})
}

// UnmarshalJSON decodes c, accepting Per and Window as strings such as
// "1m" or as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		Per    *jsonduration.Duration `json:"per,omitempty"`
		Window *jsonduration.Duration `json:"window,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.Per), (*jsonduration.Duration)(&c.Window)})
	return jsonduration.WithPrefix("ratelimit", err)
}
