package degrade

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Errors matched, with errors.Is, by the errors of [Switch.Force] and
// [Switch.Feature].
var (
	// ErrNoLevel: the switch does not have the level.
	ErrNoLevel = errors.New("degrade: no such level")
	// ErrUnknownFeature: the feature is not in Config.Features.
	ErrUnknownFeature = errors.New("degrade: unknown feature")
)

// Switch is a graceful-degradation switch: it holds the current feature
// level, from 0 (full service) to the number of configured levels, moves
// it with the pressure of its [Signal], and answers whether a feature or
// a level of work is still enabled.
//
// It is safe for concurrent use. [Switch.Enabled], [Switch.Allow] and
// [Switch.Level] read one atomic word and never lock or allocate (with a
// no-op MeterProvider, and with the SDK's once a feature's attribute set
// has been recorded).
// [Switch.Update], [Switch.Force] and [Switch.Auto] are serialised by a
// mutex. A Switch starts no goroutine: evaluate it with [Switch.Run] in a
// goroutine the caller owns, or call [Switch.Update]. Its gauge callbacks
// stay registered with the MeterProvider until [Switch.Close].
type Switch struct {
	level    atomic.Int32
	pressure atomic.Uint64 // float64 bits of the last pressure read
	forced   atomic.Bool

	// Immutable after New.
	name     string
	levels   []LevelConfig
	features map[string]*Feature
	names    []string // sorted feature names
	interval time.Duration
	minDwell time.Duration
	signal   Signal
	inst     instruments

	mu         sync.Mutex
	lastChange time.Time // when the level last changed; guarded by mu
}

// Feature is a handle on one configured feature of a [Switch], looked up
// once by [Switch.Feature] so that [Feature.Enabled] does not hash the
// name on every call. It is safe for concurrent use.
type Feature struct {
	s     *Switch
	name  string
	offAt int32
	opts  []metric.AddOption // of the skipped counter
}

// Name returns the feature's name.
func (f *Feature) Name() string { return f.name }

// OffAt returns the level at which the feature is turned off.
func (f *Feature) OffAt() int { return int(f.offAt) }

// Enabled reports whether the feature is on, as [Switch.Enabled] does,
// counting a false answer in resilience.degrade.skipped.
func (f *Feature) Enabled() bool {
	if f.s.level.Load() < f.offAt {
		return true
	}
	f.s.inst.skipped.Add(context.Background(), 1, f.opts...)
	return false
}

// New returns a Switch configured by cfg, at level 0, or the error of
// cfg.Validate, or an error creating its instruments.
func New(cfg Config) (*Switch, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Switch{
		name:     cfg.Name,
		levels:   cfg.Levels,
		features: make(map[string]*Feature, len(cfg.Features)),
		interval: cfg.Interval,
		minDwell: cfg.MinDwell,
		signal:   cfg.Signal,
	}
	for name, lvl := range cfg.Features {
		s.features[name] = &Feature{s: s, name: name, offAt: int32(lvl)}
		s.names = append(s.names, name)
	}
	slices.Sort(s.names)
	if err := s.inst.init(s, cfg.MeterProvider); err != nil {
		return nil, fmt.Errorf("degrade %q: metrics: %w", s.name, err)
	}
	return s, nil
}

// Name returns the switch's Config.Name.
func (s *Switch) Name() string { return s.name }

// Close unregisters the switch's metric callbacks, so the
// resilience.degrade.level and resilience.degrade.pressure gauges no
// longer report it; the switch keeps working, and counting transitions and
// skipped features, without its gauges. Close does not stop
// [Switch.Run]: cancel its context. Close the switch when replacing it with
// another of the same name. It is idempotent and returns the
// MeterProvider's error unregistering, if any.
func (s *Switch) Close() error { return s.inst.close() }

// Levels returns the number of degraded levels: the switch's level runs
// from 0 to Levels().
func (s *Switch) Levels() int { return len(s.levels) }

// Level returns the current level: 0 for full service, up to
// [Switch.Levels].
func (s *Switch) Level() int { return int(s.level.Load()) }

// Pressure returns the pressure read by the last [Switch.Update], or 0
// before the first.
func (s *Switch) Pressure() float64 { return math.Float64frombits(s.pressure.Load()) }

// Forced reports whether an operator holds the level with
// [Switch.Force].
func (s *Switch) Forced() bool { return s.forced.Load() }

// Allow reports whether work that is turned off at level may run: true
// while the current level is below level. Allow(0) is always false, and
// a level above [Switch.Levels] is always allowed. Unlike
// [Switch.Enabled] it records no metric.
func (s *Switch) Allow(level int) bool { return int(s.level.Load()) < level }

// Enabled reports whether the named feature is on: true while the
// current level is below the level Config.Features turns it off at. A
// feature that was not configured is always enabled, so a typo fails
// open. When it returns false, Enabled adds one to the
// resilience.degrade.skipped counter of the feature. On the hottest
// paths, [Switch.Feature] saves the lookup of the name.
func (s *Switch) Enabled(feature string) bool {
	f, ok := s.features[feature]
	return !ok || f.Enabled()
}

// Feature returns a handle on the named feature, or an error matching
// [ErrUnknownFeature] if Config.Features does not have it: resolving
// features at start-up turns a misspelt name into an error instead of a
// feature that is never turned off.
func (s *Switch) Feature(name string) (*Feature, error) {
	f, ok := s.features[name]
	if !ok {
		return nil, fmt.Errorf("degrade %q: %w %q", s.name, ErrUnknownFeature, name)
	}
	return f, nil
}

// Update reads the signal and moves the level, as of now, and returns the
// level. Up to which level it moves at once, and when it steps down, is
// decided by the configured thresholds:
//
//   - it jumps up to the highest level whose Enter threshold the pressure
//     reaches, at once;
//   - otherwise, if the pressure is below the current level's Exit
//     threshold and the level has not changed for Config.MinDwell, it
//     steps down one level (one level per MinDwell, so recovery is
//     gradual);
//   - while the level is forced ([Switch.Force]) it only records the
//     pressure.
//
// A change is counted in resilience.degrade.transitions and, if ctx holds
// a recording span, added to it as a [LevelChangeEventName] event. With no
// Signal, the pressure is 0. Update may be called from any goroutine;
// calls are serialised. now should come from the same clock as
// time.Now, which [Switch.Force] uses to stamp its change, and should not
// go backwards.
func (s *Switch) Update(ctx context.Context, now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := 0.0
	if s.signal != nil {
		p = sanitize(s.signal.Pressure())
	}
	s.pressure.Store(math.Float64bits(p))
	cur := int(s.level.Load())
	if s.forced.Load() {
		return cur
	}
	to := cur
	for to < len(s.levels) && p >= s.levels[to].Enter {
		to++
	}
	if to == cur && cur > 0 && p < s.levels[cur-1].Exit && now.Sub(s.lastChange) >= s.minDwell {
		to = cur - 1
	}
	if to != cur {
		s.change(ctx, now, cur, to, false)
	}
	return to
}

// Run calls [Switch.Update] at once and then every Config.Interval, until
// ctx is done. It blocks: run it in a goroutine whose owner cancels ctx.
func (s *Switch) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Update(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Force sets the level and holds it there until [Switch.Auto]: the signal
// no longer moves it. It is meant for operators, through [Switch.Handler]
// or a runbook. A level outside 0 to [Switch.Levels] is an error matching
// [ErrNoLevel]. A change is recorded as by [Switch.Update].
func (s *Switch) Force(ctx context.Context, level int) error {
	if level < 0 || level > len(s.levels) {
		return fmt.Errorf("degrade %q: %w %d (want 0 to %d)", s.name, ErrNoLevel, level, len(s.levels))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced.Store(true)
	if cur := int(s.level.Load()); cur != level {
		s.change(ctx, time.Now(), cur, level, true)
	}
	return nil
}

// Auto hands the level back to the signal after [Switch.Force]. The level
// stays where it was forced until the next [Switch.Update], which moves it
// by the usual rules: up at once, down one level per Config.MinDwell
// counted from the forced change.
func (s *Switch) Auto() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forced.Store(false)
}

// change moves the level from one value to another and records it. s.mu
// must be held.
func (s *Switch) change(ctx context.Context, now time.Time, from, to int, forced bool) {
	s.level.Store(int32(to))
	s.lastChange = now
	s.inst.transitions.Add(ctx, 1, s.inst.transitionOpts[from][to]...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(LevelChangeEventName, trace.WithAttributes(
			PolicyNameKey.String(s.name),
			FromLevelKey.Int(from),
			ToLevelKey.Int(to),
			PressureKey.Float64(s.Pressure()),
			ForcedKey.Bool(forced),
		))
	}
}

// LevelName returns the name of level: "full" for 0, the configured or
// default name ("level N") of the others, "" for a level the switch does
// not have.
func (s *Switch) LevelName(level int) string {
	switch {
	case level == 0:
		return "full"
	case level > 0 && level <= len(s.levels):
		return s.levels[level-1].Name
	}
	return ""
}

// Status is a snapshot of a [Switch], as [Switch.Handler] serves it.
type Status struct {
	// Name is the switch's Config.Name.
	Name string `json:"name"`
	// Level is the current level and LevelName its name.
	Level     int    `json:"level"`
	LevelName string `json:"level_name"`
	// Forced reports whether the level is held by [Switch.Force].
	Forced bool `json:"forced"`
	// Pressure is the pressure read by the last [Switch.Update].
	Pressure float64 `json:"pressure"`
	// Levels are the switch's levels, 0 (full) first.
	Levels []LevelStatus `json:"levels"`
	// Features are the configured features, sorted by name.
	Features []FeatureStatus `json:"features"`
}

// LevelStatus describes one level in a [Status]. Level 0 has no
// thresholds.
type LevelStatus struct {
	Level int     `json:"level"`
	Name  string  `json:"name"`
	Enter float64 `json:"enter,omitempty"`
	Exit  float64 `json:"exit,omitempty"`
}

// FeatureStatus describes one feature in a [Status]: its name, the level
// it is turned off at, and whether it is enabled at the current level.
type FeatureStatus struct {
	Name    string `json:"name"`
	OffAt   int    `json:"off_at"`
	Enabled bool   `json:"enabled"`
}

// Status returns a snapshot of the switch. The fields are read one by
// one, so a concurrent change may show in some and not others.
func (s *Switch) Status() Status {
	lvl := s.Level()
	st := Status{
		Name:      s.name,
		Level:     lvl,
		LevelName: s.LevelName(lvl),
		Forced:    s.Forced(),
		Pressure:  s.Pressure(),
		Levels:    make([]LevelStatus, 0, len(s.levels)+1),
		Features:  make([]FeatureStatus, 0, len(s.names)),
	}
	st.Levels = append(st.Levels, LevelStatus{Level: 0, Name: s.LevelName(0)})
	for i, l := range s.levels {
		st.Levels = append(st.Levels, LevelStatus{Level: i + 1, Name: l.Name, Enter: l.Enter, Exit: l.Exit})
	}
	for _, name := range s.names {
		off := int(s.features[name].offAt)
		st.Features = append(st.Features, FeatureStatus{Name: name, OffAt: off, Enabled: lvl < off})
	}
	return st
}

// sanitize maps a signal's reading into [0, MaxFloat64].
func sanitize(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0:
		return 0
	case math.IsInf(p, 1):
		return math.MaxFloat64
	}
	return p
}
