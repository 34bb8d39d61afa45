package resilienceconfig

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/resilience"
)

// ReloadsMetricName is the counter a [Reloader] adds each reload to, with
// the attribute resilience.outcome: "ok" or "error".
const ReloadsMetricName = "resilience.config.reloads"

// OutcomeKey is the attribute key of a reload's outcome.
const OutcomeKey = attribute.Key("resilience.outcome")

const scopeName = "github.com/cairnhq/cairn/resilience/resilienceconfig"

// Reloader holds the current [Set] of a configuration and replaces it on
// reload. A reload validates and builds the new configuration against the
// current Set, reusing every breaker, bulkhead, rate limiter, budget,
// adaptive limiter, shedder and throttle whose config is unchanged, and
// every hedger whose config and budget are (so its state survives: an open
// breaker stays open, a limiter keeps its tokens), and then swaps the new Set in
// atomically. A configuration that does not decode, does not validate,
// fails to build or drops a pipeline a [Live] handle uses is rejected with
// its error, and the current Set keeps serving.
//
// A policy whose config changed is replaced by a new one with fresh state;
// calls running through the old one finish there. After the swap, every
// replaced or removed policy is closed (see [Set.Close]): its metric
// callbacks are unregistered, so its gauges no longer report it beside its
// replacement under the same resilience.policy.name, and a shedder's CPU
// sampler goroutine stops. A call that a [Live] handle or a caller of an
// older Set still runs through an old pipeline is unaffected: a closed
// policy keeps working, only without its gauges (and a shedder with its
// last CPU sample). A reload that fails closes the policies it built.
// [Reloader.Close] closes the policies of the current Set.
//
// A Reloader is safe for concurrent use; reloads are serialised. It starts
// no goroutine of its own: [Reloader.Watch] runs in the caller's.
type Reloader struct {
	cur atomic.Pointer[Set]
	o   options

	reloads       metric.Int64Counter
	okOpt, errOpt []metric.AddOption

	mu       sync.Mutex        // serialises reloads; guards the fields below
	inUse    map[string]int    // pipelines of Live handles, by name
	lastSeen [sha256.Size]byte // hash of the data last reloaded
	seen     bool              // whether lastSeen is set
	closed   bool              // whether Close was called
}

// NewReloader builds the first Set from f, as [New] does, and returns a
// Reloader serving it. It returns New's error if f is invalid, or the
// MeterProvider's if the reload counter cannot be made.
func NewReloader(f *File, opts ...Option) (*Reloader, error) {
	r := &Reloader{o: newOptions(opts), inUse: make(map[string]int)}
	mp := r.o.mp
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	var err error
	r.reloads, err = mp.Meter(scopeName).Int64Counter(ReloadsMetricName,
		metric.WithDescription("Reloads of the resilience configuration by outcome."),
		metric.WithUnit("{reload}"))
	if err != nil {
		return nil, fmt.Errorf("resilienceconfig: %w", err)
	}
	r.okOpt = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(OutcomeKey.String("ok")))}
	r.errOpt = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(OutcomeKey.String("error")))}
	s, err := build(f, nil, r.o)
	if err != nil {
		return nil, err
	}
	r.cur.Store(s)
	return r, nil
}

// Current returns the Set serving now.
func (r *Reloader) Current() *Set { return r.cur.Load() }

// Reload decodes data with [Decode] and applies it as [Reloader.Apply]
// does. It remembers data's hash, good or bad, so that
// [Reloader.Watch] does not apply the same content twice.
func (r *Reloader) Reload(data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSeen, r.seen = sha256.Sum256(data), true
	f, err := Decode(data)
	if err != nil {
		return r.fail(err)
	}
	return r.apply(f)
}

// ReloadFile reads the file at path and reloads its content as
// [Reloader.Reload] does.
func (r *Reloader) ReloadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.fail(fmt.Errorf("resilienceconfig: %w", err))
	}
	if err := r.Reload(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Apply validates f, builds it against the current Set and swaps it in,
// or returns the error and keeps the current Set. See [Reloader] for what
// is reused.
func (r *Reloader) Apply(f *File) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apply(f)
}

// errClosed is the error of a reload after [Reloader.Close].
var errClosed = errors.New("resilienceconfig: reloader closed")

// apply is Apply with r.mu held.
func (r *Reloader) apply(f *File) error {
	if r.closed {
		return r.fail(errClosed)
	}
	var missing []string
	for name := range r.inUse {
		if _, ok := f.Pipelines[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		errs := make([]error, len(missing))
		for i, name := range missing {
			errs[i] = fmt.Errorf("resilienceconfig: pipelines.%s: removed, but a Live handle uses it", name)
		}
		return r.fail(errors.Join(errs...))
	}
	prev := r.cur.Load()
	s, err := build(f, prev, r.o)
	if err != nil {
		return r.fail(err)
	}
	r.cur.Store(s)
	if err := prev.closeNotIn(s); err != nil {
		// The reload succeeded; only metric callbacks may be left behind.
		otel.Handle(err)
	}
	r.reloads.Add(context.Background(), 1, r.okOpt...)
	if r.o.onReload != nil {
		r.o.onReload(s)
	}
	return nil
}

// Close closes the policies of the current Set (see [Set.Close]): it
// unregisters their metric callbacks and stops the CPU sampler goroutines
// of its shedders. The Set keeps serving, and calls still running are
// unaffected: its policies keep working, without their gauges, and its
// shedders with their last CPU sample. Later reloads fail. Close is
// idempotent: the first call returns the errors of the policies' Close
// methods, later ones nil. It waits for a reload in progress.
func (r *Reloader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.cur.Load().Close()
}

// fail counts a failed reload, reports err to the OnError callback and
// returns it. r.mu is held.
func (r *Reloader) fail(err error) error {
	r.reloads.Add(context.Background(), 1, r.errOpt...)
	if r.o.onError != nil {
		r.o.onError(err)
	}
	return err
}

// Watch polls the file at path every interval, and at once, and reloads it
// when its content differs from the data last reloaded. It reports failed
// reads and reloads to the [WithOnError] callback (a read error once until
// it changes, a bad content once until the file changes) and keeps
// watching. It blocks until ctx ends, and returns ctx's error; run it in a
// goroutine you own and cancel ctx to stop it:
//
//	go r.Watch(ctx, "resilience.yaml", 5*time.Second)
//
// It returns an error at once if interval is not positive.
func (r *Reloader) Watch(ctx context.Context, path string, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("resilienceconfig: watch interval %v is not positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	lastReadErr := ""
	for {
		data, err := os.ReadFile(path)
		switch {
		case err != nil:
			if err.Error() != lastReadErr {
				lastReadErr = err.Error()
				r.mu.Lock()
				_ = r.fail(fmt.Errorf("resilienceconfig: %w", err))
				r.mu.Unlock()
			}
		default:
			lastReadErr = ""
			r.mu.Lock()
			same := r.seen && r.lastSeen == sha256.Sum256(data)
			r.mu.Unlock()
			if !same {
				_ = r.Reload(data) // reported to OnError
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Live is a handle on a named pipeline of a [Reloader] for results of type
// T: every call runs through the pipeline of the Set current when it
// starts, so reloads take effect on the next call without the caller
// rebuilding anything. The pipeline is built once per Set, on the first
// call after a reload; after that Execute allocates nothing of its own.
// A Live is safe for concurrent use. While it exists, reloads that remove
// its pipeline are rejected; there is no way to release it.
type Live[T any] struct {
	r     *Reloader
	name  string
	outer []resilience.Stage
	st    atomic.Pointer[liveState[T]]
}

// liveState is a Live's pipeline for one Set.
type liveState[T any] struct {
	set *Set
	p   *resilience.Pipeline[T]
}

// NewLive returns a handle on the pipeline of r named name, inside the
// outer stages (see [Pipeline]). It returns an error matching
// [ErrUnknownPipeline] if the current Set has no such pipeline, or the
// error of an invalid outer stage.
func NewLive[T any](r *Reloader, name string, outer ...resilience.Stage) (*Live[T], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.cur.Load()
	p, err := Pipeline[T](s, name, outer...)
	if err != nil {
		return nil, err
	}
	r.inUse[name]++
	l := &Live[T]{r: r, name: name, outer: outer}
	l.st.Store(&liveState[T]{set: s, p: p})
	return l, nil
}

// Pipeline returns the pipeline of the current Set.
func (l *Live[T]) Pipeline() *resilience.Pipeline[T] {
	s := l.r.cur.Load()
	st := l.st.Load()
	if st.set == s {
		return st.p
	}
	p, err := Pipeline[T](s, l.name, l.outer...)
	if err != nil {
		// Reloads keep the pipeline and NewLive checked the outer
		// stages, so this cannot happen; keep the last pipeline.
		return st.p
	}
	l.st.Store(&liveState[T]{set: s, p: p})
	return p
}

// Execute runs fn through the current pipeline, as
// [resilience.Pipeline.Execute] does.
func (l *Live[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return l.Pipeline().Execute(ctx, fn)
}
