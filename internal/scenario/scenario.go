package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenario is a declared fault scenario: the load it runs, the events of
// its timeline and the assertions that must hold. A Scenario is a value
// that [Run] only reads; it is safe to share between runs.
type Scenario struct {
	// Name identifies the scenario on the command line and in URLs:
	// lowercase words joined by hyphens, such as "payment-outage".
	Name string
	// Summary tells the scenario's story in one line.
	Summary string
	// Params are the parameters the events and assertions read, with
	// their defaults. The names "duration" and "rps" are reserved for the
	// run's own settings.
	Params []Param
	// RPS is the load, in requests per second, that the run asks of the
	// load generator. Must be positive.
	RPS float64
	// Duration is the default length of a run, before its drain. Must be
	// positive.
	Duration time.Duration
	// Timeline is the events, in any order; they fire in order of At.
	Timeline []Event
	// Assertions are what the run checks.
	Assertions []Assertion
}

// Event is one step of a scenario's timeline.
type Event struct {
	// At is when the event fires, as a fraction of the run's duration in
	// [0, 1): 0.25 fires a quarter of the way through. Fractions rather
	// than offsets keep a timeline meaningful when a run is made longer
	// or shorter (cairn demo --duration). Events with equal At fire in
	// the order of the Timeline.
	At float64
	// Name says what happens, for people ("payment provider fails"); it
	// is also what an [Assertion.After] refers to, so it must be unique
	// within the scenario.
	Name string
	// Do carries the event out through env, reading its settings from
	// params. An error aborts the run (after cleanup).
	Do func(ctx context.Context, env Env, params Params) error
}

// Kind says when an [Assertion] is evaluated and what passing means.
type Kind int

// The kinds of assertion.
const (
	// Eventually must become true within Within of the run's start, or of
	// the event named by After; Within zero means by the end of the run's
	// drain. It is sampled until it passes or its deadline passes.
	Eventually Kind = iota
	// AtEnd must hold once the run is over, its faults cleared and its
	// drain waited out. It is evaluated once.
	AtEnd
	// Always must never be false while sampled, from the start (or the
	// After event) to the end of the drain. A sample that fails to read
	// (an error) does not count as false.
	Always
)

var kindNames = [...]string{Eventually: "eventually", AtEnd: "at_end", Always: "always"}

// String returns "eventually", "at_end" or "always".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText encodes k as its String.
func (k Kind) MarshalText() ([]byte, error) {
	if k < 0 || int(k) >= len(kindNames) {
		return nil, fmt.Errorf("scenario: unknown assertion kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes the form MarshalText writes.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, name := range kindNames {
		if string(b) == name {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("scenario: assertion kind %q: want eventually, at_end or always", b)
}

// Assertion is one thing a run must observe.
type Assertion struct {
	// Name says what must hold, for people ("breaker opens").
	Name string
	// Kind says when the assertion is evaluated.
	Kind Kind
	// Within bounds an Eventually assertion: it must pass within this long
	// of its start. Zero means by the end of the run's drain. Ignored for
	// the other kinds.
	Within time.Duration
	// WithinParam, if set, names a Duration param whose value replaces
	// Within, so that a caller can tighten or loosen the bound.
	WithinParam string
	// After names the event the assertion starts at; empty means the
	// run's start. Counter increases ([Window.Increase]) are measured from
	// that moment too, and an Eventually or Always assertion is not
	// sampled before it.
	After string
	// Check observes the shop through probe and says whether the
	// assertion holds. An error means the observation could not be made
	// (the console is unreachable, say); it never passes an assertion.
	// Check is also called once before the run starts, with
	// Window.Baseline set, so that the counters it reads get a baseline;
	// that result is ignored.
	Check func(ctx context.Context, probe Probe, w Window) (Observation, error)
}

// Observation is what one evaluation of an [Assertion] saw.
type Observation struct {
	// OK reports whether the assertion holds.
	OK bool
	// Text says what was observed, short and in plain words: "14 sagas
	// compensated", "breaker payment-provider opened 2 times".
	Text string
}

// Window is what a [Assertion.Check] knows about the moment it is called.
type Window struct {
	// RunStart is when the run started.
	RunStart time.Time
	// Start is when the assertion started: RunStart, or when its After
	// event fired.
	Start time.Time
	// Now is when the check is made.
	Now time.Time
	// Baseline is true for the call made before the run starts, whose
	// only purpose is to record the baselines of the counters it reads.
	Baseline bool
	// Params are the run's parameters.
	Params Params

	anchor string // the After event, or "" for the run's start
	base   *baselines
}

// Elapsed returns how long the assertion has been running: Now - Start.
func (w Window) Elapsed() time.Duration { return w.Now.Sub(w.Start) }

// Counter names a cumulative counter (an OpenTelemetry monotonic Sum)
// across the services that report it.
type Counter struct {
	// Service is the service.name that reports it; empty means every
	// service that does, summed.
	Service string
	// Metric is the metric's name.
	Metric string
	// Attrs keeps only the series whose attributes have these values.
	Attrs map[string]string
}

// Increase returns how much c grew since the window's start: its total
// now (see [TelemetryProbe.CounterTotal]) minus its total when the run
// started, or when the assertion's After event fired. The baseline is
// recorded by the runner: for counters the assertion read in its baseline
// call, at the run's start and just before each event fires; for a
// counter first read later, at that first read, which then returns 0.
func (w Window) Increase(ctx context.Context, p Probe, c Counter) (float64, error) {
	now, err := p.CounterTotal(ctx, c.Service, c.Metric, c.Attrs)
	if err != nil {
		return 0, err
	}
	if w.base == nil {
		return now, nil
	}
	return now - w.base.get(w.anchor, c, now), nil
}

// ParamType is the type of a [Param]'s value.
type ParamType int

// The types of parameter values.
const (
	// Float is a finite number, not negative.
	Float ParamType = iota
	// Rate is a number in [0, 1]: an error rate, a fraction.
	Rate
	// Duration is a non-negative Go duration such as "250ms" or "2s".
	Duration
)

var paramTypeNames = [...]string{Float: "float", Rate: "rate", Duration: "duration"}

// String returns "float", "rate" or "duration".
func (t ParamType) String() string {
	if t >= 0 && int(t) < len(paramTypeNames) {
		return paramTypeNames[t]
	}
	return "ParamType(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText encodes t as its String.
func (t ParamType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes the form MarshalText writes.
func (t *ParamType) UnmarshalText(b []byte) error {
	for i, name := range paramTypeNames {
		if string(b) == name {
			*t = ParamType(i)
			return nil
		}
	}
	return fmt.Errorf("scenario: param type %q: want float, rate or duration", b)
}

// Param declares one parameter of a scenario.
type Param struct {
	// Name is how callers set it: error_rate, open_within.
	Name string `json:"name"`
	// Type says how the value is parsed and checked. Default Float.
	Type ParamType `json:"type"`
	// Default is the value when the caller sets none, in the form a
	// caller would write it ("1.0", "10s"). It must parse.
	Default string `json:"default"`
	// Help says what it changes, in a few words.
	Help string `json:"help"`
}

// parse parses v as p's type, naming p and v in the error.
func (p Param) parse(v string) (float64, time.Duration, error) {
	switch p.Type {
	case Duration:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, fmt.Errorf("scenario: param %s = %q: want a non-negative duration such as 250ms or 10s", p.Name, v)
		}
		return 0, d, nil
	case Rate, Float:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return 0, 0, fmt.Errorf("scenario: param %s = %q: want a non-negative number", p.Name, v)
		}
		if p.Type == Rate && f > 1 {
			return 0, 0, fmt.Errorf("scenario: param %s = %q: want a number in [0, 1]", p.Name, v)
		}
		return f, 0, nil
	}
	return 0, 0, fmt.Errorf("scenario: param %s: unknown type %v", p.Name, p.Type)
}

// Params are the parameter values of one run of one scenario, made by
// [Scenario.ParseParams]. The zero Params stands for the scenario's
// defaults. Params are immutable and safe for concurrent use.
type Params struct {
	scenario string
	decl     []Param
	floats   map[string]float64
	durs     map[string]time.Duration
	text     map[string]string
}

// ParseParams returns the scenario's parameters with values overriding
// their defaults. An empty value means the default. Every error names the
// parameter and the bad value; a name the scenario does not declare is an
// error that lists the names it does.
func (s *Scenario) ParseParams(values map[string]string) (Params, error) {
	p := Params{
		scenario: s.Name,
		decl:     s.Params,
		floats:   make(map[string]float64),
		durs:     make(map[string]time.Duration),
		text:     make(map[string]string),
	}
	known := make(map[string]bool, len(s.Params))
	var errs []error
	for _, d := range s.Params {
		known[d.Name] = true
		v := d.Default
		if o, ok := values[d.Name]; ok && o != "" {
			v = o
		}
		f, dur, err := d.parse(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.floats[d.Name], p.durs[d.Name], p.text[d.Name] = f, dur, v
	}
	for _, name := range sortedKeys(values) {
		if !known[name] {
			errs = append(errs, fmt.Errorf("scenario: %s has no param %q; it has %v", s.Name, name, s.paramNames()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Params{}, err
	}
	return p, nil
}

// ParseAssignments turns command-line assignments such as
// "error_rate=0.5" (the values of a repeated --param flag) into the map
// [Scenario.ParseParams] takes. An assignment without "=" or with an
// empty name is an error naming it; a name given twice keeps the last
// value.
func ParseAssignments(args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("scenario: param %q: want name=value, such as error_rate=0.5", a)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

func (s *Scenario) paramNames() []string {
	out := make([]string, len(s.Params))
	for i, p := range s.Params {
		out[i] = p.Name
	}
	return out
}

// Float returns the value of the Float or Rate parameter name. It panics
// if the scenario declares no such parameter of that type: that is a
// defect of the scenario, which [Run] reports as the failure of the event
// or check that asked.
func (p Params) Float(name string) float64 {
	p.mustHave(name, Float, Rate)
	return p.floats[name]
}

// Duration returns the value of the Duration parameter name. It panics
// like [Params.Float].
func (p Params) Duration(name string) time.Duration {
	p.mustHave(name, Duration)
	return p.durs[name]
}

func (p Params) mustHave(name string, types ...ParamType) {
	for _, d := range p.decl {
		if d.Name != name {
			continue
		}
		for _, t := range types {
			if d.Type == t {
				return
			}
		}
		panic(fmt.Sprintf("scenario: %s: param %s is a %v, not a %v", p.scenario, name, d.Type, types[0]))
	}
	panic(fmt.Sprintf("scenario: %s declares no param %s", p.scenario, name))
}

// Values returns the parameters as text, by name: the values given to
// ParseParams, or the defaults.
func (p Params) Values() map[string]string {
	out := make(map[string]string, len(p.text))
	for k, v := range p.text {
		out[k] = v
	}
	return out
}

// MarshalJSON encodes p as an object of parameter names to their text.
func (p Params) MarshalJSON() ([]byte, error) { return json.Marshal(p.Values()) }

// String lists the parameters in their declared order: "error_rate=1
// open_within=10s".
func (p Params) String() string {
	var b []byte
	for i, d := range p.decl {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, d.Name...)
		b = append(b, '=')
		b = append(b, p.text[d.Name]...)
	}
	return string(b)
}

// Validate reports every defect of s: a missing name, summary, load or
// duration; a parameter without a name, with a reserved or repeated name,
// or a default that does not parse; an event outside [0, 1), without a
// name or action, or with a repeated name; an assertion without a name or
// check, of an unknown kind, or after an event the timeline lacks.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("scenario %s: "+format, append([]any{s.Name}, args...)...))
	}
	if s.Name == "" {
		bad("no name")
	}
	if s.Summary == "" {
		bad("no summary")
	}
	if !(s.RPS > 0) || math.IsInf(s.RPS, 0) {
		bad("rps %v: must be positive", s.RPS)
	}
	if s.Duration <= 0 {
		bad("duration %v: must be positive", s.Duration)
	}
	params := make(map[string]bool)
	for _, p := range s.Params {
		switch {
		case p.Name == "":
			bad("a param has no name")
		case p.Name == "duration" || p.Name == "rps":
			bad("param %s: the name is reserved", p.Name)
		case params[p.Name]:
			bad("param %s: declared twice", p.Name)
		}
		params[p.Name] = true
		if _, _, err := p.parse(p.Default); err != nil {
			bad("default: %v", err)
		}
	}
	events := make(map[string]bool)
	for _, e := range s.Timeline {
		switch {
		case e.Name == "":
			bad("an event has no name")
		case events[e.Name]:
			bad("event %q: named twice", e.Name)
		}
		events[e.Name] = true
		if !(e.At >= 0 && e.At < 1) {
			bad("event %q: at %v: must be in [0, 1)", e.Name, e.At)
		}
		if e.Do == nil {
			bad("event %q: no Do", e.Name)
		}
	}
	names := make(map[string]bool)
	for _, a := range s.Assertions {
		switch {
		case a.Name == "":
			bad("an assertion has no name")
		case names[a.Name]:
			bad("assertion %q: named twice", a.Name)
		}
		names[a.Name] = true
		if a.Kind < 0 || int(a.Kind) >= len(kindNames) {
			bad("assertion %q: unknown kind %d", a.Name, int(a.Kind))
		}
		if a.Check == nil {
			bad("assertion %q: no Check", a.Name)
		}
		if a.Within < 0 {
			bad("assertion %q: within %v: must not be negative", a.Name, a.Within)
		}
		if a.WithinParam != "" && !slices.ContainsFunc(s.Params, func(p Param) bool { return p.Name == a.WithinParam && p.Type == Duration }) {
			bad("assertion %q: within param %q: no such duration param", a.Name, a.WithinParam)
		}
		if a.After != "" && !events[a.After] {
			bad("assertion %q: after %q: no such event", a.Name, a.After)
		}
	}
	return errors.Join(errs...)
}
