package redisratelimit

import (
	"encoding/json"
	"fmt"
	"time"
)

// MarshalJSON encodes c with Per and Timeout as strings such as "1s".
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Per     jsonDuration `json:"per,omitempty"`
		Timeout jsonDuration `json:"timeout,omitempty"`
	}{plain(c), jsonDuration(c.Per), jsonDuration(c.Timeout)})
}

// UnmarshalJSON decodes c, accepting Per and Timeout as strings such as
// "1m" or as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	return json.Unmarshal(data, &struct {
		*plain
		Per     *jsonDuration `json:"per,omitempty"`
		Timeout *jsonDuration `json:"timeout,omitempty"`
	}{(*plain)(c), (*jsonDuration)(&c.Per), (*jsonDuration)(&c.Timeout)})
}

// jsonDuration is a time.Duration in JSON: a string such as "1s", or a
// number of nanoseconds.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n int64
		if err := json.Unmarshal(data, &n); err != nil {
			return fmt.Errorf("redisratelimit: invalid duration %s: want a string such as \"1s\" or nanoseconds", data)
		}
		*d = jsonDuration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("redisratelimit: invalid duration: %w", err)
	}
	*d = jsonDuration(v)
	return nil
}
