// Package fault injects failures and latency into the calls of the demo's
// services, so that a user can watch the resilience policies react: a
// circuit breaker opening, retries and fallbacks on the traces, the error
// budget burning.
//
// An [Injector] guards one dependency (the order service's database, say).
// The service calls [Injector.Inject] before each call to that dependency;
// Inject waits the configured latency and returns an [*Error] at the
// configured rate. Settings change at runtime, from code with [Injector.Set]
// or over HTTP with [Handler], and apply to the next call. An Injector with
// zero Settings does nothing and costs an atomic load.
package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// ErrInjected is matched by every [*Error] an [Injector] returns.
var ErrInjected = errors.New("fault: injected")

// Error is the failure an [Injector] injected. It matches [ErrInjected].
type Error struct {
	// Target is the name of the injector.
	Target string
}

// Error names the target.
func (e *Error) Error() string { return fmt.Sprintf("fault: injected failure in %s", e.Target) }

// Is reports whether target is [ErrInjected].
func (e *Error) Is(target error) bool { return target == ErrInjected }

// Settings say which faults an [Injector] injects. The zero Settings inject
// nothing. In JSON, Latency is a string such as "250ms".
type Settings struct {
	// ErrorRate in [0, 1] is the fraction of calls that fail with an
	// [*Error].
	ErrorRate float64 `json:"error_rate"`
	// Latency is added to a LatencyRate fraction of calls, before they run
	// or fail. It must not be negative.
	Latency time.Duration `json:"latency"`
	// LatencyRate in [0, 1] is the fraction of calls delayed by Latency.
	// Zero with a positive Latency means every call.
	LatencyRate float64 `json:"latency_rate"`
}

// Validate reports every invalid field of s, naming it and its value.
func (s Settings) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{{"error_rate", s.ErrorRate}, {"latency_rate", s.LatencyRate}} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			errs = append(errs, fmt.Errorf("fault: %s = %v: must be in [0, 1]", f.name, f.v))
		}
	}
	if s.Latency < 0 {
		errs = append(errs, fmt.Errorf("fault: latency = %v: must not be negative", s.Latency))
	}
	return errors.Join(errs...)
}

// active reports whether s injects anything.
func (s Settings) active() bool { return s.ErrorRate > 0 || s.Latency > 0 }

// MarshalJSON encodes s with Latency as a string such as "250ms".
func (s Settings) MarshalJSON() ([]byte, error) {
	type plain Settings
	return json.Marshal(struct {
		plain
		Latency string `json:"latency"`
	}{plain(s), s.Latency.String()})
}

// UnmarshalJSON decodes s, accepting Latency as a string such as "250ms" or
// a number of nanoseconds, and rejecting unknown fields. It does not
// validate s.
func (s *Settings) UnmarshalJSON(data []byte) error {
	type plain Settings
	aux := struct {
		*plain
		Latency json.RawMessage `json:"latency"`
	}{plain: (*plain)(s)}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("fault: settings: %w", err)
	}
	if len(aux.Latency) == 0 || string(aux.Latency) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(aux.Latency, &str) == nil {
		d, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("fault: latency = %q: %w", str, err)
		}
		s.Latency = d
		return nil
	}
	var n int64
	if err := json.Unmarshal(aux.Latency, &n); err != nil {
		return fmt.Errorf("fault: latency = %s: want a duration such as \"250ms\"", aux.Latency)
	}
	s.Latency = time.Duration(n)
	return nil
}

// Injector injects the faults of its current [Settings] into the calls to
// one dependency. It is safe for concurrent use.
type Injector struct {
	name     string
	settings atomic.Pointer[Settings]
	injected atomic.Int64
	delayed  atomic.Int64
}

// New returns an Injector named name (the dependency it guards) that
// injects nothing until [Injector.Set] is called.
func New(name string) *Injector {
	i := &Injector{name: name}
	i.settings.Store(&Settings{})
	return i
}

// Name returns the injector's name.
func (i *Injector) Name() string { return i.name }

// Set replaces the settings, from the next call on. It returns the error of
// s.Validate and then keeps the old settings.
func (i *Injector) Set(s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	i.settings.Store(&s)
	return nil
}

// Settings returns the current settings.
func (i *Injector) Settings() Settings { return *i.settings.Load() }

// Counts returns how many failures the injector has injected and how many
// calls it has delayed since it was made.
func (i *Injector) Counts() (failed, delayed int64) {
	return i.injected.Load(), i.delayed.Load()
}

// Inject runs the current settings' faults for one call: it waits the
// latency (for the configured fraction of calls), then fails the call (at
// the error rate) with an [*Error]. Either is recorded as an event on the
// active span. If ctx ends during the wait, Inject returns ctx's error.
func (i *Injector) Inject(ctx context.Context) error {
	s := i.settings.Load()
	if !s.active() {
		return nil
	}
	if s.Latency > 0 && (s.LatencyRate == 0 || rand.Float64() < s.LatencyRate) {
		i.delayed.Add(1)
		trace.SpanFromContext(ctx).AddEvent("fault.delay", trace.WithAttributes(
			attribute.String("fault.target", i.name),
			attribute.Float64("fault.delay_seconds", s.Latency.Seconds()),
		))
		t := time.NewTimer(s.Latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if s.ErrorRate > 0 && rand.Float64() < s.ErrorRate {
		i.injected.Add(1)
		trace.SpanFromContext(ctx).AddEvent("fault.error", trace.WithAttributes(
			attribute.String("fault.target", i.name),
		))
		return &Error{Target: i.name}
	}
	return nil
}
