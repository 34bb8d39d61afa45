package degrade

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
	DefaultName     = "degrade"
	DefaultInterval = time.Second
	DefaultMinDwell = 10 * time.Second
	// DefaultExitRatio is the share of a level's Enter threshold used as
	// its Exit threshold when Exit is zero.
	DefaultExitRatio = 0.9
)

// MaxLevels bounds the number of degraded levels a [Config] may define.
const MaxLevels = 16

// DefaultLevels returns the levels [New] uses when Config.Levels is
// empty: 1 "optional" (drop optional work such as recommendations),
// entered at pressure 0.7 and left below 0.6; 2 "expensive" (drop
// expensive work such as search suggestions and non-critical writes),
// entered at 0.85, left below 0.75; 3 "essential" (serve only essential
// work), entered at 0.95, left below 0.85.
func DefaultLevels() []LevelConfig {
	return []LevelConfig{
		{Name: "optional", Enter: 0.7, Exit: 0.6},
		{Name: "expensive", Enter: 0.85, Exit: 0.75},
		{Name: "essential", Enter: 0.95, Exit: 0.85},
	}
}

// LevelConfig describes one degraded level. Levels[0] of a [Config] is
// level 1, Levels[1] level 2, and so on; level 0, full service, has no
// entry.
type LevelConfig struct {
	// Name names the level in the HTTP handler's answers, such as
	// "optional". Default "level N".
	Name string `json:"name,omitempty"`
	// Enter is the pressure at or above which the switch enters this
	// level. It must be finite and greater than 0, and greater than the
	// Enter of the level below. Pressure may exceed 1, so may Enter.
	// Required: it has no default.
	Enter float64 `json:"enter"`
	// Exit is the pressure below which the switch leaves this level for
	// the one below. It must be finite, greater than 0, at most Enter, and
	// at least the Exit of the level below. The gap between Exit and
	// Enter is the hysteresis. Default DefaultExitRatio × Enter.
	Exit float64 `json:"exit,omitempty"`
}

// Config configures a [Switch]. It is a plain struct that can be decoded
// from JSON; in JSON, durations are strings such as "10s" (numbers of
// nanoseconds are accepted too). Every zero field means its default, so
// the zero Config is a switch with [DefaultLevels], no features and no
// signal: a switch moved only by [Switch.Force]. The Signal and provider
// fields are not serialised.
type Config struct {
	// Name identifies the switch in errors, metrics and span events (the
	// resilience.policy.name attribute). Default "degrade".
	Name string `json:"name,omitempty"`
	// Levels are the degraded levels, from the mildest (level 1) to the
	// most severe, at most MaxLevels. Default [DefaultLevels].
	Levels []LevelConfig `json:"levels,omitempty"`
	// Features maps a feature's name to the level at which it is turned
	// off: a feature mapped to 2 is enabled at levels 0 and 1 and disabled
	// from level 2 up. Levels run from 1 to len(Levels). Default none.
	Features map[string]int `json:"features,omitempty"`
	// Interval is how often [Switch.Run] evaluates the signal. Default 1s.
	Interval time.Duration `json:"interval,omitempty"`
	// MinDwell is how long the switch stays at a level after any change
	// before it may step down one level. Stepping up is never delayed.
	// Default 10s; it cannot be turned off, set 1ns for (almost) none.
	MinDwell time.Duration `json:"min_dwell,omitempty"`
	// Signal gives the pressure that drives the level. Default nil: the
	// pressure stays 0 and only [Switch.Force] changes the level.
	Signal Signal `json:"-"`
	// MeterProvider provides the meter for the switch's metrics. Default
	// the global otel.GetMeterProvider().
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("degrade: invalid config: %s = %v: %s", field, value, why))
	}
	if c.Interval < 0 {
		bad("Interval", c.Interval, "must not be negative")
	}
	if c.MinDwell < 0 {
		bad("MinDwell", c.MinDwell, "must not be negative")
	}
	if len(c.Levels) > MaxLevels {
		bad("Levels", len(c.Levels), fmt.Sprintf("must have at most %d levels", MaxLevels))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	var prev LevelConfig // the previous level, Exit defaulted
	prevOK := false
	for i, l := range c.Levels {
		field := fmt.Sprintf("Levels[%d]", i)
		okEnter := finite(l.Enter) && l.Enter > 0
		if !okEnter {
			bad(field+".Enter", l.Enter, "must be finite and greater than 0")
		} else if prevOK && l.Enter <= prev.Enter {
			bad(field+".Enter", l.Enter, fmt.Sprintf("must be greater than Levels[%d].Enter (%v)", i-1, prev.Enter))
		}
		okExit := finite(l.Exit) && l.Exit >= 0
		if !okExit {
			bad(field+".Exit", l.Exit, "must be finite and not negative")
		}
		exit, shown := l.Exit, any(l.Exit)
		if exit == 0 {
			exit = DefaultExitRatio * l.Enter
			shown = fmt.Sprintf("0 (default %v)", exit)
		}
		if okEnter && okExit {
			if exit > l.Enter {
				bad(field+".Exit", shown, fmt.Sprintf("must not exceed %s.Enter (%v)", field, l.Enter))
			} else if prevOK && exit < prev.Exit {
				bad(field+".Exit", shown, fmt.Sprintf("must not be below Levels[%d].Exit (%v)", i-1, prev.Exit))
			}
		}
		prev, prevOK = LevelConfig{Enter: l.Enter, Exit: exit}, okEnter && okExit
	}
	n := len(c.Levels)
	if n == 0 {
		n = len(DefaultLevels())
	}
	for name, lvl := range c.Features {
		if lvl < 1 || lvl > n {
			bad(fmt.Sprintf("Features[%q]", name), lvl, fmt.Sprintf("must be a level from 1 to %d", n))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if len(c.Levels) == 0 {
		c.Levels = DefaultLevels()
	} else {
		c.Levels = append([]LevelConfig(nil), c.Levels...)
	}
	for i := range c.Levels {
		if c.Levels[i].Name == "" {
			c.Levels[i].Name = fmt.Sprintf("level %d", i+1)
		}
		if c.Levels[i].Exit == 0 {
			c.Levels[i].Exit = DefaultExitRatio * c.Levels[i].Enter
		}
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MinDwell == 0 {
		c.MinDwell = DefaultMinDwell
	}
	return c
}

// MarshalJSON encodes c with Interval and MinDwell as strings such as
// "10s". The Signal and provider fields are left out.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	return json.Marshal(struct {
		plain
		Interval jsonduration.Duration `json:"interval,omitempty"`
		MinDwell jsonduration.Duration `json:"min_dwell,omitempty"`
	}{plain(c), jsonduration.Duration(c.Interval), jsonduration.Duration(c.MinDwell)})
}

// UnmarshalJSON decodes c, accepting Interval and MinDwell as strings
// such as "10s" or as numbers of nanoseconds. It does not validate c.
func (c *Config) UnmarshalJSON(data []byte) error {
	type plain Config
	err := json.Unmarshal(data, &struct {
		*plain
		Interval *jsonduration.Duration `json:"interval,omitempty"`
		MinDwell *jsonduration.Duration `json:"min_dwell,omitempty"`
	}{(*plain)(c), (*jsonduration.Duration)(&c.Interval), (*jsonduration.Duration)(&c.MinDwell)})
	return jsonduration.WithPrefix("degrade", err)
}
