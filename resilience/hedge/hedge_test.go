package hedge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

var (
	errPrimary = errors.New("primary failed")
	errHedge   = errors.New("hedge failed")
)

func newHedger(t *testing.T, cfg Config, b budget.Budget) *Hedger {
	t.Helper()
	h, err := New(cfg, b)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return h
}

// step is what the attempt with one index does: take d, then return err
// (or its index on success).
type step struct {
	d   time.Duration
	err error
}

// script runs attempts by the steps, in order of start, and counts them.
type script struct {
	steps     []step
	started   atomic.Int32
	cancelled atomic.Int32
	finished  atomic.Int32
	mu        sync.Mutex
	starts    []time.Duration // since t0
	t0        time.Time
}

func newScript(steps ...step) *script {
	return &script{steps: steps, t0: time.Now()}
}

func (s *script) fn(ctx context.Context) (int, error) {
	i := int(s.started.Add(1) - 1)
	s.mu.Lock()
	s.starts = append(s.starts, time.Since(s.t0))
	s.mu.Unlock()
	defer s.finished.Add(1)
	st := s.steps[i]
	t := time.NewTimer(st.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		s.cancelled.Add(1)
		return 0, ctx.Err()
	case <-t.C:
	}
	return i, st.err
}

func (s *script) startTimes() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.starts...)
}

// fakeBudget grants the first grants withdrawals and counts the calls.
type fakeBudget struct {
	grants                                   int32
	withdraws, requests, successes, failures atomic.Int32
}

func (f *fakeBudget) Withdraw() bool { return f.withdraws.Add(1) <= f.grants }
func (f *fakeBudget) OnRequest()     { f.requests.Add(1) }
func (f *fakeBudget) OnSuccess()     { f.successes.Add(1) }
func (f *fakeBudget) OnFailure()     { f.failures.Add(1) }

func TestHedgeWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fakeBudget{grants: 10}
		h := newHedger(t, Config{Delay: 10 * time.Millisecond}, fb)
		s := newScript(step{d: 50 * time.Millisecond}, step{d: 5 * time.Millisecond})
		v, err := Do(t.Context(), h, s.fn)
		if err != nil || v != 1 {
			t.Fatalf("Do = %d, %v; want 1 (the hedge), nil", v, err)
		}
		if got := time.Since(s.t0); got != 15*time.Millisecond {
			t.Fatalf("Do took %v, want 15ms", got)
		}
		synctest.Wait()
		if got := s.cancelled.Load(); got != 1 {
			t.Fatalf("cancelled attempts = %d, want 1 (the primary)", got)
		}
		if got := s.finished.Load(); got != 2 {
			t.Fatalf("finished attempts = %d, want 2", got)
		}
		if got := h.Quantile().Count(); got != 1 {
			t.Fatalf("observations = %d, want 1", got)
		}
		// The winner's own latency, 5ms, was observed, not 15ms.
		if got := h.Quantile().Value(); got < 5*time.Millisecond || got > 5*time.Millisecond*9/8 {
			t.Fatalf("observed latency estimate = %v, want 5ms to 5.625ms", got)
		}
		want := [4]int32{1, 1, 1, 0}
		if got := [4]int32{fb.requests.Load(), fb.withdraws.Load(), fb.successes.Load(), fb.failures.Load()}; got != want {
			t.Fatalf("budget requests, withdraws, successes, failures = %v, want %v", got, want)
		}
	})
}

func TestPrimaryFastNoHedge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fakeBudget{grants: 10}
		h := newHedger(t, Config{Delay: 10 * time.Millisecond, MaxHedges: 5}, fb)
		s := newScript(step{d: 5 * time.Millisecond})
		v, err := Do(t.Context(), h, s.fn)
		if err != nil || v != 0 {
			t.Fatalf("Do = %d, %v; want 0, nil", v, err)
		}
		if got := time.Since(s.t0); got != 5*time.Millisecond {
			t.Fatalf("Do took %v, want 5ms", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := s.started.Load(); got != 1 {
			t.Fatalf("attempts = %d, want 1", got)
		}
		if got := fb.withdraws.Load(); got != 0 {
			t.Fatalf("withdrawals = %d, want 0", got)
		}
	})
}

func TestMaxHedges(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	synctest.Test(t, func(t *testing.T) {
		h := newHedger(t, Config{Name: "db", Delay: 10 * time.Millisecond, MaxHedges: 2}, nil)
		s := newScript(step{d: 100 * time.Millisecond}, step{d: 100 * time.Millisecond}, step{d: 100 * time.Millisecond})
		ctx, span := tp.Tracer("test").Start(t.Context(), "call")
		v, err := Do(ctx, h, s.fn)
		span.End()
		if err != nil || v != 0 {
			t.Fatalf("Do = %d, %v; want 0 (the primary), nil", v, err)
		}
		if got := time.Since(s.t0); got != 100*time.Millisecond {
			t.Fatalf("Do took %v, want 100ms", got)
		}
		synctest.Wait()
		want := []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond}
		if diff := cmp.Diff(want, s.startTimes()); diff != "" {
			t.Fatalf("start times mismatch (-want +got):\n%s", diff)
		}
		if got := s.cancelled.Load(); got != 2 {
			t.Fatalf("cancelled attempts = %d, want 2", got)
		}
	})
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	var got []map[string]any
	for _, e := range spans[0].Events() {
		m := map[string]any{"name": e.Name}
		for _, kv := range e.Attributes {
			m[string(kv.Key)] = kv.Value.AsInterface()
		}
		got = append(got, m)
	}
	want := []map[string]any{
		{"name": SentEventName, string(PolicyNameKey): "db", string(AttemptKey): int64(2)},
		{"name": SentEventName, string(PolicyNameKey): "db", string(AttemptKey): int64(3)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("span events mismatch (-want +got):\n%s", diff)
	}
}

func TestBudgetDenial(t *testing.T) {
	t.Run("fake", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fb := &fakeBudget{grants: 1}
			h := newHedger(t, Config{Delay: 10 * time.Millisecond, MaxHedges: 3}, fb)
			long := step{d: 50 * time.Millisecond}
			s := newScript(long, long, long, long)
			v, err := Do(t.Context(), h, s.fn)
			if err != nil || v != 0 {
				t.Fatalf("Do = %d, %v; want 0, nil", v, err)
			}
			synctest.Wait()
			// One hedge granted at 10ms, denied at 20ms, then no more asking.
			if got := s.started.Load(); got != 2 {
				t.Fatalf("attempts = %d, want 2", got)
			}
			if got := fb.withdraws.Load(); got != 2 {
				t.Fatalf("withdrawals asked = %d, want 2", got)
			}
		})
	})
	t.Run("grpc", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b, err := budget.NewGRPC(budget.Config{MaxTokens: 2})
			if err != nil {
				t.Fatal(err)
			}
			b.OnFailure() // 1 of 2 tokens left: not above half, no hedges
			h := newHedger(t, Config{Delay: 10 * time.Millisecond}, b)
			s := newScript(step{d: 50 * time.Millisecond})
			if _, err := Do(t.Context(), h, s.fn); err != nil {
				t.Fatal(err)
			}
			if got := time.Since(s.t0); got != 50*time.Millisecond {
				t.Fatalf("Do took %v, want 50ms", got)
			}
			if got := s.started.Load(); got != 1 {
				t.Fatalf("attempts = %d, want 1", got)
			}
			if got := b.Tokens(); got != 1.1 {
				t.Fatalf("tokens = %v, want 1.1 after the success", got)
			}
		})
	})
}

func TestAllFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb := &fakeBudget{grants: 10}
		h := newHedger(t, Config{Name: "db", Delay: 10 * time.Millisecond}, fb)
		s := newScript(step{d: 30 * time.Millisecond, err: errPrimary}, step{d: 5 * time.Millisecond, err: errHedge})
		_, err := Do(t.Context(), h, s.fn)
		if got := time.Since(s.t0); got != 30*time.Millisecond {
			t.Fatalf("Do took %v, want 30ms", got)
		}
		var he *Error
		if !errors.As(err, &he) {
			t.Fatalf("Do error = %v, want *Error", err)
		}
		if he.Name != "db" || he.Attempts != 2 || he.Cause != nil || !errors.Is(err, errPrimary) || !errors.Is(err, errHedge) {
			t.Fatalf("Do error = %+v, want 2 attempts wrapping both errors", he)
		}
		if diff := cmp.Diff([]error{errHedge, errPrimary}, he.Errs, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Fatalf("Errs mismatch (-want +got):\n%s", diff)
		}
		if want := "hedge: db: all 2 attempts failed: hedge failed\nprimary failed"; err.Error() != want {
			t.Fatalf("Error() = %q, want %q", err, want)
		}
		if got := fb.failures.Load(); got != 2 {
			t.Fatalf("budget failures = %d, want 2", got)
		}
		if got := h.Quantile().Count(); got != 0 {
			t.Fatalf("observations = %d, want 0", got)
		}
	})
}

func TestPrimaryFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHedger(t, Config{Delay: 10 * time.Millisecond}, nil)
		s := newScript(step{d: 2 * time.Millisecond, err: errPrimary})
		_, err := Do(t.Context(), h, s.fn)
		if !errors.Is(err, errPrimary) {
			t.Fatalf("Do error = %v, want %v", err, errPrimary)
		}
		if got := time.Since(s.t0); got != 2*time.Millisecond {
			t.Fatalf("Do took %v, want 2ms", got)
		}
		time.Sleep(time.Second)
		if got := s.started.Load(); got != 1 {
			t.Fatalf("attempts = %d, want 1: no hedge after every attempt failed", got)
		}
	})
}

func TestPrimaryFailsHedgeWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHedger(t, Config{Delay: 10 * time.Millisecond}, nil)
		s := newScript(step{d: 12 * time.Millisecond, err: errPrimary}, step{d: 5 * time.Millisecond})
		v, err := Do(t.Context(), h, s.fn)
		if err != nil || v != 1 {
			t.Fatalf("Do = %d, %v; want 1, nil", v, err)
		}
		if got := time.Since(s.t0); got != 15*time.Millisecond {
			t.Fatalf("Do took %v, want 15ms", got)
		}
	})
}

func TestContextCancel(t *testing.T) {
	for _, tt := range []struct {
		name string
		ctx  func(context.Context) (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(25*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 25*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHedger(t, Config{Name: "db", Delay: 10 * time.Millisecond, MaxHedges: 2}, nil)
				long := step{d: time.Hour}
				s := newScript(long, long, long)
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				_, err := Do(ctx, h, s.fn)
				if got := time.Since(s.t0); got != 25*time.Millisecond {
					t.Fatalf("Do took %v, want 25ms", got)
				}
				var he *Error
				if !errors.As(err, &he) || !errors.Is(err, tt.want) || he.Cause != tt.want || he.Attempts != 3 {
					t.Fatalf("Do error = %v, want *Error after 3 attempts wrapping %v", err, tt.want)
				}
				synctest.Wait()
				if got := s.cancelled.Load(); got != 3 {
					t.Fatalf("cancelled attempts = %d, want 3", got)
				}
				if got := s.finished.Load(); got != 3 {
					t.Fatalf("finished attempts = %d, want 3", got)
				}
			})
		})
	}
	t.Run("already done", func(t *testing.T) {
		fb := &fakeBudget{}
		h := newHedger(t, Config{}, fb)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		s := newScript()
		_, err := Do(ctx, h, s.fn)
		if !errors.Is(err, context.Canceled) || s.started.Load() != 0 || fb.requests.Load() != 0 {
			t.Fatalf("Do = %v after %d attempts, want context.Canceled without attempts", err, s.started.Load())
		}
	})
}

func TestAdaptiveDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHedger(t, Config{MinSamples: 5, MinDelay: time.Millisecond, MaxDelay: time.Second}, nil)
		if got := h.Delay(); got != time.Second {
			t.Fatalf("Delay() before MinSamples = %v, want MaxDelay 1s", got)
		}
		for range 5 {
			s := newScript(step{d: 20 * time.Millisecond})
			if _, err := Do(t.Context(), h, s.fn); err != nil {
				t.Fatal(err)
			}
		}
		d := h.Delay()
		if d < 20*time.Millisecond || d > 20*time.Millisecond*9/8 {
			t.Fatalf("Delay() = %v, want about 20ms", d)
		}
		s := newScript(step{d: time.Second}, step{d: time.Millisecond})
		v, err := Do(t.Context(), h, s.fn)
		if err != nil || v != 1 {
			t.Fatalf("Do = %d, %v; want 1, nil", v, err)
		}
		if got := time.Since(s.t0); got != d+time.Millisecond {
			t.Fatalf("Do took %v, want the delay %v + 1ms", got, d)
		}
		synctest.Wait()
	})
	for _, tt := range []struct {
		name     string
		min, max time.Duration
		want     time.Duration
	}{
		{"min clamp", 50 * time.Millisecond, time.Second, 50 * time.Millisecond},
		{"max clamp", time.Microsecond, 10 * time.Millisecond, 10 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHedger(t, Config{MinSamples: 1, MinDelay: tt.min, MaxDelay: tt.max}, nil)
			h.Quantile().Observe(20 * time.Millisecond)
			if got := h.Delay(); got != tt.want {
				t.Fatalf("Delay() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConcurrentDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := budget.NewGRPC(budget.Config{})
		if err != nil {
			t.Fatal(err)
		}
		h := newHedger(t, Config{MaxHedges: 2, MinSamples: 10, MaxDelay: 50 * time.Millisecond}, b)
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				for j := range 20 {
					d := time.Duration(1+(i*7+j*13)%40) * time.Millisecond
					s := newScript(step{d: d}, step{d: d / 2}, step{d: d / 3})
					if _, err := Do(t.Context(), h, s.fn); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		if got := h.Quantile().Count(); got != 1000 {
			t.Fatalf("observations = %d, want 1000", got)
		}
	})
}
