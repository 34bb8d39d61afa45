package circuitbreaker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/metric/noop"
)

var errBoom = errors.New("boom")

func newBreaker(t *testing.T, cfg Config) *Breaker {
	t.Helper()
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = noop.NewMeterProvider()
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return b
}

// call makes one call through b that returns err, failing the test if b
// rejects it.
func call(t *testing.T, b *Breaker, err error) {
	t.Helper()
	p, aerr := b.Allow()
	if aerr != nil {
		t.Fatalf("Allow() = %v, want nil", aerr)
	}
	p.Done(err)
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State() = %v, want %v", got, want)
	}
}

// wantOpen checks that Allow rejects with an *OpenError with state and
// retryAfter.
func wantOpen(t *testing.T, b *Breaker, state State, retryAfter time.Duration) {
	t.Helper()
	_, err := b.Allow()
	if !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow() = %v, want ErrOpen", err)
	}
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("Allow() = %T, want *OpenError", err)
	}
	if oe.State != state || oe.RetryAfter != retryAfter {
		t.Fatalf("Allow() = %+v, want State %v RetryAfter %v", *oe, state, retryAfter)
	}
}

func TestTripOnFailureRate(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []error
		want     []State // after each outcome
	}{
		{"failures trip at minimum calls", []error{errBoom, errBoom, errBoom, errBoom},
			[]State{StateClosed, StateClosed, StateClosed, StateOpen}},
		{"half failures trip", []error{nil, errBoom, nil, errBoom},
			[]State{StateClosed, StateClosed, StateClosed, StateOpen}},
		{"below threshold stays closed", []error{nil, errBoom, nil, nil, nil, errBoom},
			[]State{StateClosed, StateClosed, StateClosed, StateClosed, StateClosed, StateClosed}},
		{"excluded not counted", []error{errBoom, context.Canceled, errBoom, context.Canceled, errBoom, nil},
			[]State{StateClosed, StateClosed, StateClosed, StateClosed, StateClosed, StateOpen}},
		{"window slides", []error{nil, nil, nil, errBoom, errBoom, errBoom},
			[]State{StateClosed, StateClosed, StateClosed, StateClosed, StateClosed, StateOpen}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(t, Config{WindowSize: 5, MinimumCalls: 4})
			for i, err := range tt.outcomes {
				call(t, b, err)
				if got := b.State(); got != tt.want[i] {
					t.Fatalf("after outcome %d (%v): State() = %v, want %v", i, err, got, tt.want[i])
				}
			}
		})
	}
}

func TestMinimumCallsCappedAtWindowSize(t *testing.T) {
	b := newBreaker(t, Config{WindowSize: 3, MinimumCalls: 50})
	for range 3 {
		call(t, b, errBoom)
	}
	wantState(t, b, StateOpen)
}

func TestSlowCallTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(t, Config{MinimumCalls: 4, SlowCallDuration: 100 * time.Millisecond, SlowCallRateThreshold: 0.5})
		slow := func(d time.Duration, err error) func(context.Context) error {
			return func(context.Context) error { time.Sleep(d); return err }
		}
		ctx := t.Context()
		_ = b.Execute(ctx, slow(100*time.Millisecond, nil)) // slow success
		_ = b.Execute(ctx, slow(99*time.Millisecond, nil))  // fast
		_ = b.Execute(ctx, slow(0, nil))
		want := Snapshot{State: StateClosed, Calls: 3, SlowCalls: 1, SlowCallRate: 1.0 / 3}
		if diff := cmp.Diff(want, b.Metrics()); diff != "" {
			t.Fatalf("Metrics() mismatch (-want +got):\n%s", diff)
		}
		_ = b.Execute(ctx, slow(time.Second, errBoom)) // slow failure
		wantState(t, b, StateOpen)
		want = Snapshot{State: StateOpen, Calls: 4, Failures: 1, SlowCalls: 2, FailureRate: 0.25, SlowCallRate: 0.5}
		if diff := cmp.Diff(want, b.Metrics()); diff != "" {
			t.Fatalf("Metrics() mismatch (-want +got):\n%s", diff)
		}
	})
}

func trip(t *testing.T, b *Breaker, n int) {
	t.Helper()
	for range n {
		call(t, b, errBoom)
	}
	wantState(t, b, StateOpen)
}

func TestOpenThenHalfOpenThenClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(t, Config{MinimumCalls: 2, HalfOpenProbes: 3})
		trip(t, b, 2)
		wantOpen(t, b, StateOpen, 30*time.Second)
		time.Sleep(10 * time.Second)
		wantOpen(t, b, StateOpen, 20*time.Second)
		time.Sleep(20*time.Second - time.Nanosecond)
		wantOpen(t, b, StateOpen, time.Nanosecond)
		time.Sleep(time.Nanosecond)
		wantState(t, b, StateOpen) // lazily
		p1, err := b.Allow()
		if err != nil {
			t.Fatalf("Allow() after open duration = %v, want nil", err)
		}
		wantState(t, b, StateHalfOpen)
		p2, _ := b.Allow()
		p3, _ := b.Allow()
		wantOpen(t, b, StateHalfOpen, 0) // all probes admitted
		p1.Done(nil)
		p2.Done(context.Canceled) // excluded: frees its slot
		wantState(t, b, StateHalfOpen)
		p4, err := b.Allow()
		if err != nil {
			t.Fatalf("Allow() after excluded probe = %v, want nil", err)
		}
		wantOpen(t, b, StateHalfOpen, 0)
		p3.Done(nil)
		p4.Done(errBoom) // 1 of 3 failed: below 0.5
		wantState(t, b, StateClosed)
		if got := b.Metrics(); got.Calls != 0 {
			t.Fatalf("Metrics().Calls after closing = %d, want 0 (window reset)", got.Calls)
		}
	})
}

func TestHalfOpenReopensWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var causes []error
		b := newBreaker(t, Config{MinimumCalls: 2, HalfOpenProbes: 1,
			OpenDurationFunc: func(opens int, cause error) time.Duration {
				causes = append(causes, cause)
				return time.Duration(opens) * 10 * time.Second
			}})
		trip(t, b, 2)
		wantOpen(t, b, StateOpen, 10*time.Second)
		for _, want := range []time.Duration{20 * time.Second, 30 * time.Second} {
			time.Sleep(retryAfter(t, b))
			call(t, b, errBoom) // the probe fails
			wantOpen(t, b, StateOpen, want)
		}
		time.Sleep(30 * time.Second)
		call(t, b, nil)
		wantState(t, b, StateClosed)
		trip(t, b, 2)
		wantOpen(t, b, StateOpen, 10*time.Second) // consecutive openings reset
		if len(causes) != 4 || !errors.Is(causes[0], errBoom) {
			t.Fatalf("OpenDurationFunc causes = %v, want 4 × boom", causes)
		}
	})
}

// retryAfter returns the RetryAfter of b's rejection.
func retryAfter(t *testing.T, b *Breaker) time.Duration {
	t.Helper()
	_, err := b.Allow()
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("Allow() = %v, want *OpenError", err)
	}
	return oe.RetryAfter
}

func TestTimeWindowExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(t, Config{Window: WindowTime, WindowDuration: 10 * time.Second, Buckets: 10, MinimumCalls: 4})
		for range 3 {
			call(t, b, errBoom)
		}
		time.Sleep(9 * time.Second)
		if got := b.Metrics().Calls; got != 3 {
			t.Fatalf("Metrics().Calls after 9s = %d, want 3", got)
		}
		time.Sleep(time.Second)
		if got := b.Metrics().Calls; got != 0 {
			t.Fatalf("Metrics().Calls after 10s = %d, want 0", got)
		}
		call(t, b, errBoom) // the old three have expired
		wantState(t, b, StateClosed)
		time.Sleep(5 * time.Second)
		call(t, b, errBoom)
		call(t, b, nil)
		call(t, b, errBoom) // 4 calls within 10s, 3 failed
		wantState(t, b, StateOpen)
	})
}

func TestTimeWindowLongIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(t, Config{Window: WindowTime, WindowDuration: time.Second, Buckets: 4, MinimumCalls: 2})
		call(t, b, errBoom)
		time.Sleep(time.Hour)
		call(t, b, errBoom)
		wantState(t, b, StateClosed)
		if got := b.Metrics().Calls; got != 1 {
			t.Fatalf("Metrics().Calls = %d, want 1", got)
		}
	})
}

func TestExcludedNotCounted(t *testing.T) {
	b := newBreaker(t, Config{MinimumCalls: 1})
	for range 20 {
		call(t, b, context.Canceled)
	}
	wantState(t, b, StateClosed)
	if got := b.Metrics(); got.Calls != 0 {
		t.Fatalf("Metrics() = %+v, want no calls", got)
	}
	custom := newBreaker(t, Config{MinimumCalls: 1,
		IsExcluded: func(err error) bool { return errors.Is(err, errBoom) },
		IsFailure:  func(err error) bool { return err.Error() != "benign" }})
	call(t, custom, errBoom)
	call(t, custom, errors.New("benign"))
	if got := custom.Metrics(); got.Calls != 1 || got.Failures != 0 {
		t.Fatalf("Metrics() = %+v, want 1 call, 0 failures", got)
	}
}

func TestManualStates(t *testing.T) {
	b := newBreaker(t, Config{MinimumCalls: 1})
	b.ForceOpen()
	wantState(t, b, StateForcedOpen)
	wantOpen(t, b, StateForcedOpen, 0)
	b.Disable()
	wantState(t, b, StateDisabled)
	for range 10 {
		call(t, b, errBoom)
	}
	wantState(t, b, StateDisabled)
	if got := b.Metrics().Calls; got != 0 {
		t.Fatalf("Metrics().Calls while disabled = %d, want 0", got)
	}
	b.Reset()
	wantState(t, b, StateClosed)
	call(t, b, errBoom)
	wantState(t, b, StateOpen)
	b.Reset()
	wantState(t, b, StateClosed)
	if got := b.Metrics().Calls; got != 0 {
		t.Fatalf("Metrics().Calls after Reset = %d, want 0", got)
	}
}

func TestStalePermitIgnored(t *testing.T) {
	b := newBreaker(t, Config{MinimumCalls: 2})
	old, _ := b.Allow()
	trip(t, b, 2)
	b.Reset()
	old.Done(errBoom) // from before the trip and Reset
	old.Done(errBoom) // misuse: still harmless here
	if got := b.Metrics().Calls; got != 0 {
		t.Fatalf("Metrics().Calls = %d, want 0", got)
	}
	var zero Permit
	zero.Done(errBoom) // no-op
}

func TestOnStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type tr struct{ From, To State }
		var got []tr
		var b *Breaker
		b = newBreaker(t, Config{MinimumCalls: 1, HalfOpenProbes: 1, OpenDuration: time.Second,
			OnStateChange: func(from, to State) {
				got = append(got, tr{from, to})
				if to == StateDisabled {
					b.Reset() // re-entrant: delivered after this call returns
				}
			}})
		call(t, b, errBoom) // closed -> open
		time.Sleep(time.Second)
		call(t, b, errBoom) // -> half-open -> open
		time.Sleep(time.Second)
		call(t, b, nil) // -> half-open -> closed
		b.ForceOpen()
		b.ForceOpen() // no transition
		b.Reset()
		b.Disable() // callback resets
		want := []tr{
			{StateClosed, StateOpen}, {StateOpen, StateHalfOpen}, {StateHalfOpen, StateOpen},
			{StateOpen, StateHalfOpen}, {StateHalfOpen, StateClosed}, {StateClosed, StateForcedOpen},
			{StateForcedOpen, StateClosed}, {StateClosed, StateDisabled}, {StateDisabled, StateClosed},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("OnStateChange calls mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestExecute(t *testing.T) {
	b := newBreaker(t, Config{MinimumCalls: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	if err := b.Execute(ctx, func(context.Context) error { called = true; return nil }); err != context.Canceled || called {
		t.Fatalf("Execute(canceled ctx) = %v (called %v), want context.Canceled without calling fn", err, called)
	}
	if err := b.Execute(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Execute() = %v, want nil", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "oops" {
				t.Fatalf("recover() = %v, want oops", r)
			}
		}()
		_ = b.Execute(context.Background(), func(context.Context) error { panic("oops") })
	}()
	wantState(t, b, StateOpen) // the panic was a failure
	err := b.Execute(context.Background(), func(context.Context) error { t.Fatal("fn called while open"); return nil })
	if !errors.Is(err, ErrOpen) {
		t.Fatalf("Execute() while open = %v, want ErrOpen", err)
	}
	if want := `circuitbreaker "circuitbreaker": open, retry after `; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Error() = %q, want prefix %q", err, want)
	}
}

// TestHalfOpenConcurrencyCap hammers Allow from many goroutines while the
// breaker is half-open and checks that no more than HalfOpenProbes calls
// are ever admitted at once. Probes end with an excluded error so the
// breaker stays half-open.
func TestHalfOpenConcurrencyCap(t *testing.T) {
	const probes = 4
	b := newBreaker(t, Config{MinimumCalls: 1, HalfOpenProbes: probes, OpenDuration: time.Millisecond})
	call(t, b, errBoom)
	time.Sleep(2 * time.Millisecond)
	var inflight, maxIn, got atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 500 {
				p, err := b.Allow()
				if err != nil {
					continue
				}
				n := inflight.Add(1)
				got.Add(1)
				for m := maxIn.Load(); n > m && !maxIn.CompareAndSwap(m, n); m = maxIn.Load() {
				}
				time.Sleep(time.Microsecond)
				inflight.Add(-1)
				p.Done(context.Canceled)
			}
		})
	}
	wg.Wait()
	wantState(t, b, StateHalfOpen)
	if m := maxIn.Load(); m > probes || m == 0 {
		t.Fatalf("max concurrently admitted = %d, want 1..%d", m, probes)
	}
	t.Logf("admitted %d probes, at most %d at once", got.Load(), maxIn.Load())
}

// TestOnStateChangeOrderUnderConcurrency checks that transitions made by
// racing goroutines reach OnStateChange one at a time (the callback uses
// no lock; the race detector would object) and in order: each starts where
// the previous ended.
func TestOnStateChangeOrderUnderConcurrency(t *testing.T) {
	type tr struct{ from, to State }
	var got []tr
	b := newBreaker(t, Config{MinimumCalls: 1, HalfOpenProbes: 1, OpenDuration: time.Microsecond,
		OnStateChange: func(from, to State) { got = append(got, tr{from, to}) }})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				switch (g + i) % 7 {
				case 0:
					b.ForceOpen()
				case 1:
					b.Reset()
				case 2:
					b.Disable()
				default:
					if p, err := b.Allow(); err == nil {
						p.Done(errBoom)
					}
				}
			}
		})
	}
	wg.Wait()
	if len(got) == 0 {
		t.Fatal("no transitions delivered")
	}
	prev := StateClosed
	for i, c := range got {
		if c.from != prev || c.from == c.to {
			t.Fatalf("transition %d = %v -> %v, previous ended in %v", i, c.from, c.to, prev)
		}
		prev = c.to
	}
	if s := b.State(); s != prev {
		t.Fatalf("State() = %v, last delivered transition ended in %v", s, prev)
	}
}
