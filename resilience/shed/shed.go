package shed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// ErrShed is matched by every [*ShedError]: errors.Is(err, ErrShed).
var ErrShed = errors.New("shed: overloaded")

// GRPCCodeName is the name of the gRPC status code an adapter should
// answer a shed request with (codes.ResourceExhausted), carrying
// [ShedError.RetryAfter] as a retry hint. This package does not depend on
// gRPC.
const GRPCCodeName = "RESOURCE_EXHAUSTED"

// ShedError is the error [Shedder.Allow] returns for a shed request.
type ShedError struct {
	// Name is the shedder's Config.Name.
	Name string
	// Priority is the priority of the shed request.
	Priority Priority
	// RetryAfter is a suggested delay before retrying: one bucket
	// (Config.Window / Config.Buckets), the time after which the
	// shedder's estimate next changes.
	RetryAfter time.Duration
}

// Error describes the shed, such as `shed "api": overloaded, shed
// sheddable request, retry after 100ms`.
func (e *ShedError) Error() string {
	return "shed " + strconv.Quote(e.Name) + ": overloaded, shed " + e.Priority.String() +
		" request, retry after " + e.RetryAfter.String()
}

// Is reports whether target is [ErrShed].
func (e *ShedError) Is(target error) bool { return target == ErrShed }

var _ error = (*ShedError)(nil)

// bucket holds the completions recorded in one bucket of time.
type bucket struct {
	idx   int64         // absolute bucket index since start; -1 for none
	pass  int64         // completed requests
	rtSum time.Duration // their total response time
}

// Shedder decides, per request, whether to admit it or shed it, after
// go-zero's adaptive shedder (github.com/zeromicro/go-zero, core/load).
// It is safe for concurrent use; create it with [New] and stop it with
// [Shedder.Close], which also unregisters its gauge callbacks.
type Shedder struct {
	inflight atomic.Int64
	dropTime atomic.Int64 // monotonic nanoseconds since start of the last overload shed, plus 1; 0 for never

	// Immutable after New.
	name      string
	threshold float64
	bucketDur time.Duration
	coolOff   time.Duration
	start     time.Time
	cpu       CPU
	sampler   *sampler // nil if Config.CPU was set
	inst      instruments

	mu      sync.Mutex
	buckets []bucket // ring, indexed by idx % len; guarded by mu

	closeOnce sync.Once
}

// New returns a Shedder configured by cfg, or the error of cfg.Validate,
// or an error creating its instruments. If cfg.CPU is nil, New starts a
// goroutine sampling the CPU usage that [Shedder.Close] stops.
func New(cfg Config) (*Shedder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Shedder{
		name:      cfg.Name,
		threshold: cfg.CPUThreshold,
		bucketDur: cfg.Window / time.Duration(cfg.Buckets),
		coolOff:   cfg.CoolOff,
		start:     time.Now(),
		cpu:       cfg.CPU,
		buckets:   make([]bucket, cfg.Buckets),
	}
	for i := range s.buckets {
		s.buckets[i].idx = -1
	}
	if err := s.inst.init(s, cfg.MeterProvider); err != nil {
		return nil, fmt.Errorf("shed: creating instruments: %w", err)
	}
	if s.cpu == nil {
		s.sampler = newSampler(sampleInterval)
		s.cpu = s.sampler
	}
	return s, nil
}

// Close stops the CPU sampler New started, if any, and waits for it to
// exit, and unregisters the shedder's metric callbacks, so the
// resilience.shed.inflight, resilience.shed.max_inflight and
// resilience.shed.cpu gauges no longer report it. The shedder keeps
// working after Close, with the last CPU sample and without its gauges.
// Close is idempotent and returns the MeterProvider's error unregistering,
// if any.
func (s *Shedder) Close() error {
	s.closeOnce.Do(func() {
		if s.sampler != nil {
			s.sampler.close()
		}
	})
	return s.inst.close()
}

// Permit is an admitted request, returned by [Shedder.Allow]. The zero
// Permit is not one.
type Permit struct {
	s     *Shedder
	start time.Time
}

// Done records the end of the admitted request and its response time. It
// must be called exactly once per admitted request; Done of the zero
// Permit does nothing.
func (p Permit) Done() {
	if p.s == nil {
		return
	}
	now := time.Now()
	p.s.inflight.Add(-1)
	p.s.record(now, now.Sub(p.start))
}

// Allow decides whether to admit a request with the priority
// [PriorityFrom](ctx). It returns a [Permit] whose Done must be called
// when the request ends, or a [*ShedError] (errors.Is(err, [ErrShed])).
// It does not look at ctx's deadline or cancellation.
//
// The server is overloaded while the CPU usage is at or above
// Config.CPUThreshold, and for Config.CoolOff after a request was shed
// because more than [Shedder.MaxInFlight] requests would have been in
// flight. While it is not overloaded, every request is admitted. While it
// is overloaded, a request is admitted only if the number of requests in
// flight, counting itself, would not exceed its priority's limit:
//
//   - [CriticalPlus]: 2 × MaxInFlight
//   - [Critical]: MaxInFlight
//   - [SheddablePlus]: MaxInFlight / 2 (rounded down)
//   - [Sheddable]: 0, so it is always shed
//
// Admitting allocates nothing. Shedding adds the span event
// [RejectedEventName] to the span of ctx when it is recording.
func (s *Shedder) Allow(ctx context.Context) (Permit, error) {
	p := PriorityFrom(ctx)
	now := time.Now()
	cpu := s.cpu.Usage()
	n := s.inflight.Add(1)
	if s.overloaded(now, cpu) {
		maxFlight := s.maxInFlight(now)
		var limit int64
		switch p {
		case CriticalPlus:
			limit = 2 * maxFlight
		case Critical:
			limit = maxFlight
		case SheddablePlus:
			limit = maxFlight / 2
		}
		if n > limit {
			s.inflight.Add(-1)
			if n > maxFlight {
				s.dropTime.Store(int64(now.Sub(s.start)) + 1)
			}
			s.inst.count(outShed, p)
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.AddEvent(RejectedEventName, trace.WithAttributes(
					PolicyNameKey.String(s.name),
					PriorityKey.String(p.String()),
					RetryAfterKey.Float64(s.bucketDur.Seconds())))
			}
			return Permit{}, &ShedError{Name: s.name, Priority: p, RetryAfter: s.bucketDur}
		}
	}
	s.inst.count(outAdmitted, p)
	return Permit{s: s, start: now}, nil
}

// overloaded reports whether the CPU usage is at or above the threshold
// or the last overload shed was less than CoolOff ago.
func (s *Shedder) overloaded(now time.Time, cpu float64) bool {
	if cpu >= s.threshold {
		return true
	}
	d := s.dropTime.Load()
	return d != 0 && int64(now.Sub(s.start))-(d-1) < int64(s.coolOff)
}

// InFlight returns the number of admitted requests not yet Done.
func (s *Shedder) InFlight() int { return int(s.inflight.Load()) }

// MaxInFlight returns the current Little's-law estimate of the requests
// the server can have in flight: the most requests completed in one
// bucket times the least average response time of a bucket, divided by
// the bucket duration, rounded to the nearest integer and at least 1.
// Only the completed buckets of the last Config.Window count. Without
// history, the most completed is taken as 1 and the least average
// response time as 1s, as go-zero does.
func (s *Shedder) MaxInFlight() int { return int(s.maxInFlight(time.Now())) }

func (s *Shedder) maxInFlight(now time.Time) int64 {
	cur := s.index(now)
	oldest := cur - int64(len(s.buckets))
	maxPass := int64(1)
	minRT := time.Duration(-1)
	s.mu.Lock()
	for i := range s.buckets {
		b := &s.buckets[i]
		if b.idx <= oldest || b.idx >= cur || b.pass == 0 {
			continue
		}
		maxPass = max(maxPass, b.pass)
		if rt := b.rtSum / time.Duration(b.pass); minRT < 0 || rt < minRT {
			minRT = rt
		}
	}
	s.mu.Unlock()
	if minRT < 0 {
		minRT = time.Second
	}
	est := math.Floor(float64(maxPass)*float64(minRT)/float64(s.bucketDur) + 0.5)
	return max(1, int64(min(est, math.MaxInt32)))
}

// index returns the absolute bucket index of now.
func (s *Shedder) index(now time.Time) int64 {
	return int64(now.Sub(s.start) / s.bucketDur)
}

// record adds a completion with response time rt to now's bucket.
func (s *Shedder) record(now time.Time, rt time.Duration) {
	idx := s.index(now)
	s.mu.Lock()
	b := &s.buckets[idx%int64(len(s.buckets))]
	if b.idx != idx {
		*b = bucket{idx: idx}
	}
	b.pass++
	b.rtSum += rt
	s.mu.Unlock()
}

// CPUUsage returns the current reading of the shedder's CPU signal.
func (s *Shedder) CPUUsage() float64 { return s.cpu.Usage() }
