package resilienceconfig

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

// ErrUnknownPipeline is matched by the error of [Pipeline] and [NewLive]
// for a pipeline name the configuration does not define.
var ErrUnknownPipeline = errors.New("resilienceconfig: unknown pipeline")

// Option configures [New] and [NewReloader]. Most callers need none.
type Option func(*options)

type options struct {
	mp       metric.MeterProvider
	breaker  func(name string, cfg *circuitbreaker.Config)
	retry    func(name string, p *retry.Policy)
	onReload func(*Set)
	onError  func(error)
}

// WithMeterProvider sets the MeterProvider of every policy built and of the
// reload counter. Default the global otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.mp = mp }
}

// WithBreakerConfig sets f to complete the config of every circuit breaker
// before it is built, with what a file cannot hold: IsFailure,
// IsExcluded, OpenDurationFunc, OnStateChange. name is the breaker's key.
// A breaker reused across a reload keeps the config it was built with.
// Default none.
func WithBreakerConfig(f func(name string, cfg *circuitbreaker.Config)) Option {
	return func(o *options) { o.breaker = f }
}

// WithRetryConfig sets f to complete every retry policy, with what a file
// cannot hold: RetryIf, Pushback, Rand. name is the policy's key. Default
// none.
func WithRetryConfig(f func(name string, p *retry.Policy)) Option {
	return func(o *options) { o.retry = f }
}

// WithOnReload sets f to be called with the new Set after each successful
// reload of a [Reloader], before the reload returns. It is called with the
// Reloader's reload lock held, so it must not reload. [New] ignores it.
// Default none.
func WithOnReload(f func(*Set)) Option {
	return func(o *options) { o.onReload = f }
}

// WithOnError sets f to be called with the error of each failed reload of
// a [Reloader], including those of [Reloader.Watch], which has no other
// way to report them. It is called with the Reloader's reload lock held, so
// it must not reload. [New] ignores it. Default none.
func WithOnError(f func(error)) Option {
	return func(o *options) { o.onError = f }
}

// built is a live policy and the file config it was built from, which
// decides whether a reload may reuse it.
type built[C, P any] struct {
	cfg C
	p   P
}

// builtHedge is a live hedger, the file config it was built from and the
// budget it draws from, which together decide whether a reload may reuse
// it.
type builtHedge struct {
	cfg    Hedge
	budget budget.Budget
	p      *hedge.Hedger
}

// Set holds the live policies of a validated [File] by name, and the
// stages of its pipelines. It is immutable and safe for concurrent use;
// the policies it holds keep their own state. Build it with [New], or get
// the current one from a [Reloader].
//
// A Set owns the metric callbacks of its policies and the CPU sampler
// goroutines of its shedders: call [Set.Close] when done with a Set from
// New. The Sets of a [Reloader] share policies across reloads and are
// closed by the Reloader instead.
type Set struct {
	file      *File
	breakers  map[string]built[circuitbreaker.Config, *circuitbreaker.Breaker]
	bulkheads map[string]built[bulkhead.Config, *bulkhead.Bulkhead]
	limiters  map[string]built[ratelimit.Config, ratelimit.Limiter]
	budgets   map[string]built[budget.Config, budget.Budget]
	adaptive  map[string]built[adaptive.Config, *adaptive.Limiter]
	shedders  map[string]built[shed.Config, *shed.Shedder]
	throttles map[string]built[adaptive.ThrottleConfig, *adaptive.Throttle]
	hedges    map[string]builtHedge
	retries   map[string]retry.Policy
	stages    map[string][]resilience.Stage
}

// New validates f and builds its policies. It returns every problem of f
// (see [File.Validate]), or the errors of the policies' constructors, each
// naming the policy. The Set does not keep f. Call [Set.Close] when done
// with the Set.
func New(f *File, opts ...Option) (*Set, error) {
	return build(f, nil, newOptions(opts))
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// build builds the Set of f, reusing the policies of prev (which may be
// nil) whose file config is unchanged. When it fails, it closes the
// policies it built, so that they report no metrics and run no goroutine.
func build(f *File, prev *Set, o options) (*Set, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if prev == nil {
		prev = &Set{}
	}
	var errs []error
	s := &Set{
		file: f.clone(),
		breakers: buildAll("breakers", f.Breakers, prev.breakers, &errs, func(name string, c circuitbreaker.Config) (*circuitbreaker.Breaker, error) {
			if c.Name == "" {
				c.Name = name
			}
			c.MeterProvider = o.mp
			if o.breaker != nil {
				o.breaker(name, &c)
			}
			return circuitbreaker.New(c)
		}),
		bulkheads: buildAll("bulkheads", f.Bulkheads, prev.bulkheads, &errs, func(name string, c bulkhead.Config) (*bulkhead.Bulkhead, error) {
			if c.Name == "" {
				c.Name = name
			}
			c.MeterProvider = o.mp
			return bulkhead.New(c)
		}),
		limiters: buildAll("ratelimits", f.RateLimits, prev.limiters, &errs, func(name string, c ratelimit.Config) (ratelimit.Limiter, error) {
			if c.Name == "" {
				c.Name = name
			}
			c.MeterProvider = o.mp
			return ratelimit.New(c)
		}),
		budgets: buildAll("budgets", f.Budgets, prev.budgets, &errs, func(name string, c budget.Config) (budget.Budget, error) {
			if c.Name == "" {
				c.Name = name
			}
			c.MeterProvider = o.mp
			return budget.New(c)
		}),
		adaptive: buildAll("adaptive", f.Adaptive, prev.adaptive, &errs, func(name string, c adaptive.Config) (*adaptive.Limiter, error) {
			if c.Name == "" {
				c.Name = name
			}
			c.MeterProvider = o.mp
			return adaptive.New(c)
		}),
		shedders: buildAll("shedders", f.Shedders, prev.shedders, &errs, func(name string, c shed.Config) (*shed.Shedder, error) {
			if c.Name == "" {
				c.Name = name
			}
			c.MeterProvider = o.mp
			return shed.New(c)
		}),
		throttles: buildAll("throttles", f.Throttles, prev.throttles, &errs, func(_ string, c adaptive.ThrottleConfig) (*adaptive.Throttle, error) {
			return adaptive.NewThrottle(c)
		}),
		hedges:  make(map[string]builtHedge, len(f.Hedges)),
		retries: make(map[string]retry.Policy, len(f.Retries)),
		stages:  make(map[string][]resilience.Stage, len(f.Pipelines)),
	}
	if err := errors.Join(errs...); err != nil {
		s.closeNew(prev)
		return nil, err
	}
	for _, name := range sortedKeys(f.Hedges) {
		h := f.Hedges[name]
		var b budget.Budget
		if h.Budget != "" {
			b = s.budgets[h.Budget].p
		}
		// Reuse the hedger, and its latency estimate, only if its budget
		// is the same object too.
		if old, ok := prev.hedges[name]; ok && reflect.DeepEqual(old.cfg, h) && old.budget == b {
			s.hedges[name] = old
			continue
		}
		c := h.Config
		if c.Name == "" {
			c.Name = name
		}
		c.MeterProvider = o.mp
		p, err := hedge.New(c, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("resilienceconfig: hedges.%s: %w", name, err))
			continue
		}
		s.hedges[name] = builtHedge{cfg: h, budget: b, p: p}
	}
	if err := errors.Join(errs...); err != nil {
		s.closeNew(prev)
		return nil, err
	}
	for name, r := range f.Retries {
		p := r.Policy
		if p.Name == "" {
			p.Name = name
		}
		if r.Budget != "" {
			p.Budget = s.budgets[r.Budget].p
		}
		p.MeterProvider = o.mp
		if o.retry != nil {
			o.retry(name, &p)
		}
		s.retries[name] = p
	}
	for name, stages := range f.Pipelines {
		out := make([]resilience.Stage, len(stages))
		for i, st := range stages {
			switch st.Kind {
			case KindRetry:
				out[i] = resilience.Retry(s.retries[st.Policy])
			case KindCircuitBreaker:
				out[i] = resilience.CircuitBreaker(s.breakers[st.Policy].p)
			case KindBulkhead:
				out[i] = resilience.Bulkhead(s.bulkheads[st.Policy].p)
			case KindRateLimit:
				c := f.RateLimits[st.Policy]
				if c.Name == "" {
					c.Name = st.Policy
				}
				out[i] = resilience.RateLimit(c.Name, s.limiters[st.Policy].p)
			case KindTimeout:
				out[i] = resilience.Timeout(st.Timeout)
			case KindAdaptive:
				out[i] = resilience.Adaptive(s.adaptive[st.Policy].p)
			case KindShed:
				out[i] = resilience.Shed(s.shedders[st.Policy].p)
			case KindThrottle:
				out[i] = resilience.Throttle(s.throttles[st.Policy].p)
			case KindHedge:
				out[i] = resilience.Hedge(s.hedges[st.Policy].p)
			}
		}
		// Check the stages as a pipeline would, so that Pipeline can only
		// fail for a wrong name or a wrong outer stage.
		if _, err := resilience.New[struct{}](out...); err != nil {
			errs = append(errs, fmt.Errorf("resilienceconfig: pipelines.%s: %w", name, err))
		}
		s.stages[name] = out
	}
	if err := errors.Join(errs...); err != nil {
		s.closeNew(prev)
		return nil, err
	}
	return s, nil
}

// closeNew closes the policies of s that prev does not hold: those built
// for s, when s is discarded. It reports the errors of their Close methods
// to otel.Handle, since the build error is the one to return.
func (s *Set) closeNew(prev *Set) {
	if err := s.closeNotIn(prev); err != nil {
		otel.Handle(err)
	}
}

// closeNotIn closes every policy of s that has a Close method (see
// [Set.Close]) and that other, which may be nil, does not hold as the same
// object under the same name. It returns the errors of those Close
// methods, joined, each naming the policy.
func (s *Set) closeNotIn(other *Set) error {
	if other == nil {
		other = &Set{}
	}
	var errs []error
	closeAll("breakers", s.breakers, other.breakers, &errs)
	closeAll("bulkheads", s.bulkheads, other.bulkheads, &errs)
	closeAll("ratelimits", s.limiters, other.limiters, &errs)
	closeAll("budgets", s.budgets, other.budgets, &errs)
	closeAll("adaptive", s.adaptive, other.adaptive, &errs)
	closeAll("shedders", s.shedders, other.shedders, &errs)
	closeAll("throttles", s.throttles, other.throttles, &errs)
	for _, name := range sortedKeys(s.hedges) {
		h := s.hedges[name]
		if o, ok := other.hedges[name]; ok && o.p == h.p {
			continue
		}
		closePolicy("hedges", name, h.p, &errs)
	}
	return errors.Join(errs...)
}

// closeAll closes the policies of m that keep does not hold as the same
// object under the same name, appending their Close errors to errs.
func closeAll[C any, P comparable](section string, m, keep map[string]built[C, P], errs *[]error) {
	for _, name := range sortedKeys(m) {
		p := m[name].p
		if k, ok := keep[name]; ok && k.p == p {
			continue
		}
		closePolicy(section, name, p, errs)
	}
}

// closePolicy closes p if it has a Close method, appending its error, which
// names section and policy, to errs.
func closePolicy(section, name string, p any, errs *[]error) {
	c, ok := p.(io.Closer)
	if !ok {
		return
	}
	if err := c.Close(); err != nil {
		*errs = append(*errs, fmt.Errorf("resilienceconfig: closing %s.%s: %w", section, name, err))
	}
}

// Close closes every policy of the Set that has a Close method: it
// unregisters the metric callbacks of its breakers, bulkheads, budgets,
// adaptive limiters, shedders and hedgers, so their gauges no longer
// report them, and stops the CPU sampler goroutines of its shedders.
// The policies, and the pipelines that use them, keep working after
// Close, so calls still running are unaffected: they only lose their
// gauges, and a shedder keeps its last CPU sample, no longer noticing a
// change in load. So close a Set only when done with it. Close is
// idempotent; it returns the errors of the policies' Close methods,
// joined, each naming the policy.
//
// Close a Set from [New]. The Sets of a [Reloader] share policies across
// reloads: close the Reloader instead ([Reloader.Close]).
func (s *Set) Close() error {
	return s.closeNotIn(nil)
}

// buildAll builds a policy for each entry of cfgs, reusing the one in prev
// of the same name whose file config is equal, and appends the error of
// each failed constructor to errs, naming section and policy.
func buildAll[C, P any](section string, cfgs map[string]C, prev map[string]built[C, P], errs *[]error, newP func(string, C) (P, error)) map[string]built[C, P] {
	out := make(map[string]built[C, P], len(cfgs))
	for _, name := range sortedKeys(cfgs) {
		c := cfgs[name]
		if old, ok := prev[name]; ok && reflect.DeepEqual(old.cfg, c) {
			out[name] = old
			continue
		}
		p, err := newP(name, c)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("resilienceconfig: %s.%s: %w", section, name, err))
			continue
		}
		out[name] = built[C, P]{cfg: c, p: p}
	}
	return out
}

// clone returns a copy of f that shares nothing mutable with it.
func (f *File) clone() *File {
	c := &File{
		Breakers:   maps.Clone(f.Breakers),
		Bulkheads:  maps.Clone(f.Bulkheads),
		RateLimits: maps.Clone(f.RateLimits),
		Retries:    maps.Clone(f.Retries),
		Budgets:    maps.Clone(f.Budgets),
		Adaptive:   maps.Clone(f.Adaptive),
		Shedders:   maps.Clone(f.Shedders),
		Throttles:  maps.Clone(f.Throttles),
		Hedges:     maps.Clone(f.Hedges),
	}
	if f.Pipelines != nil {
		c.Pipelines = make(map[string][]Stage, len(f.Pipelines))
		for k, v := range f.Pipelines {
			c.Pipelines[k] = slices.Clone(v)
		}
	}
	return c
}

// Breaker returns the circuit breaker of the given name.
func (s *Set) Breaker(name string) (*circuitbreaker.Breaker, bool) {
	b, ok := s.breakers[name]
	return b.p, ok
}

// Bulkhead returns the bulkhead of the given name.
func (s *Set) Bulkhead(name string) (*bulkhead.Bulkhead, bool) {
	b, ok := s.bulkheads[name]
	return b.p, ok
}

// Limiter returns the rate limiter of the given name.
func (s *Set) Limiter(name string) (ratelimit.Limiter, bool) {
	l, ok := s.limiters[name]
	return l.p, ok
}

// Budget returns the retry budget of the given name.
func (s *Set) Budget(name string) (budget.Budget, bool) {
	b, ok := s.budgets[name]
	return b.p, ok
}

// Adaptive returns the adaptive concurrency limiter of the given name.
func (s *Set) Adaptive(name string) (*adaptive.Limiter, bool) {
	l, ok := s.adaptive[name]
	return l.p, ok
}

// Shedder returns the load shedder of the given name.
func (s *Set) Shedder(name string) (*shed.Shedder, bool) {
	sh, ok := s.shedders[name]
	return sh.p, ok
}

// Throttle returns the client-side throttle of the given name.
func (s *Set) Throttle(name string) (*adaptive.Throttle, bool) {
	t, ok := s.throttles[name]
	return t.p, ok
}

// Hedger returns the hedger of the given name, drawing from its budget.
func (s *Set) Hedger(name string) (*hedge.Hedger, bool) {
	h, ok := s.hedges[name]
	return h.p, ok
}

// Retry returns the retry policy of the given name, with its budget and
// the [WithRetryConfig] additions.
func (s *Set) Retry(name string) (retry.Policy, bool) {
	p, ok := s.retries[name]
	return p, ok
}

// File returns a copy of the validated File the Set was built from.
func (s *Set) File() *File { return s.file.clone() }

// Stages returns the stages of the named pipeline, outermost first, for
// composing with stages of your own in [resilience.New]. It returns an
// error matching [ErrUnknownPipeline] if there is no such pipeline.
func (s *Set) Stages(name string) ([]resilience.Stage, error) {
	st, ok := s.stages[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownPipeline, name)
	}
	return slices.Clone(st), nil
}

// Pipeline returns the named pipeline of s for results of type T, inside
// the outer stages, which come first, outermost first. Outer stages are
// where code adds what a file cannot express: a [resilience.Fallback], or
// a [resilience.Custom] policy. To put your own stages elsewhere, compose
// [Set.Stages] with [resilience.New] yourself. Pipeline returns an error
// matching [ErrUnknownPipeline] if there is no such pipeline, and
// resilience.New's error if an outer stage is invalid or of another T.
func Pipeline[T any](s *Set, name string, outer ...resilience.Stage) (*resilience.Pipeline[T], error) {
	st, ok := s.stages[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownPipeline, name)
	}
	p, err := resilience.New[T](append(slices.Clip(outer), st...)...)
	if err != nil {
		return nil, fmt.Errorf("resilienceconfig: pipeline %q: %w", name, err)
	}
	return p, nil
}
