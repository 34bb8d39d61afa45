package bulkhead

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
)

func newBulkhead(t testing.TB, cfg Config) *Bulkhead {
	t.Helper()
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = noop.NewMeterProvider()
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func acquire(t *testing.T, b *Bulkhead) Permit {
	t.Helper()
	p, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire() = %v", err)
	}
	return p
}

// checkEmpty fails unless every slot was returned and nobody is queued.
func checkEmpty(t *testing.T, b *Bulkhead) {
	t.Helper()
	if in, q := b.InFlight(), b.QueueLen(); in != 0 || q != 0 {
		t.Fatalf("InFlight() = %d, QueueLen() = %d at the end, want 0, 0", in, q)
	}
}

func rejected(t *testing.T, err error, reason string) *RejectedError {
	t.Helper()
	var re *RejectedError
	if !errors.As(err, &re) || !errors.Is(err, ErrFull) {
		t.Fatalf("err = %v, want a *RejectedError matching ErrFull", err)
	}
	if re.Reason != reason {
		t.Fatalf("Reason = %q, want %q", re.Reason, reason)
	}
	return re
}

func TestAcquireRelease(t *testing.T) {
	b := newBulkhead(t, Config{Name: "db", MaxConcurrent: 2})
	p1, p2 := acquire(t, b), acquire(t, b)
	if got := b.InFlight(); got != 2 {
		t.Fatalf("InFlight() = %d, want 2", got)
	}
	_, err := b.Acquire(context.Background())
	re := rejected(t, err, ReasonQueueFull)
	if re.Name != "db" || re.Waited != 0 || re.Err != nil {
		t.Fatalf("rejection = %+v", re)
	}
	if got, want := err.Error(), `bulkhead "db": queue full`; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if _, ok := b.TryAcquire(); ok {
		t.Fatal("TryAcquire() succeeded on a full bulkhead")
	}
	p1.Release()
	p3, ok := b.TryAcquire()
	if !ok {
		t.Fatal("TryAcquire() failed with a free slot")
	}
	p2.Release()
	p3.Release()
	Permit{}.Release() // no-op
	checkEmpty(t, b)
	defer func() {
		if recover() == nil {
			t.Fatal("extra Release did not panic")
		}
	}()
	p3.Release()
}

func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, Config{MaxConcurrent: 1, MaxQueue: 2})
		p := acquire(t, b)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				p, err := b.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				p.Release()
			})
		}
		synctest.Wait()
		if got := b.QueueLen(); got != 2 {
			t.Fatalf("QueueLen() = %d, want 2", got)
		}
		_, err := b.Acquire(context.Background())
		rejected(t, err, ReasonQueueFull)
		p.Release()
		wg.Wait()
		checkEmpty(t, b)
	})
}

func TestMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const wait = 250 * time.Millisecond
		b := newBulkhead(t, Config{Name: "db", MaxConcurrent: 1, MaxQueue: 1, MaxWait: wait})
		p := acquire(t, b)
		start := time.Now()
		_, err := b.Acquire(context.Background())
		re := rejected(t, err, ReasonMaxWait)
		if re.Waited != wait || time.Since(start) != wait {
			t.Fatalf("Waited = %v after %v, want %v", re.Waited, time.Since(start), wait)
		}
		if re.Err != nil || errors.Unwrap(err) != nil {
			t.Fatalf("max wait rejection wraps %v", re.Err)
		}
		if got, want := err.Error(), `bulkhead "db": max wait, after 250ms`; got != want {
			t.Fatalf("Error() = %q, want %q", got, want)
		}
		if got := b.QueueLen(); got != 0 {
			t.Fatalf("QueueLen() = %d after expiry, want 0", got)
		}
		p.Release()
		checkEmpty(t, b)
	})
}

func TestContextWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, Config{MaxConcurrent: 1, MaxQueue: 1})
		p := acquire(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			_, err := b.Acquire(ctx)
			done <- err
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		err := <-done
		re := rejected(t, err, ReasonContext)
		if !errors.Is(err, context.Canceled) || re.Waited != time.Second {
			t.Fatalf("err = %v, Waited = %v; want context.Canceled after 1s", err, re.Waited)
		}
		if got, want := err.Error(), `bulkhead "bulkhead": context, after 1s: context canceled`; got != want {
			t.Fatalf("Error() = %q, want %q", got, want)
		}
		// A done context is rejected without queueing.
		_, err = b.Acquire(ctx)
		if re := rejected(t, err, ReasonContext); re.Waited != 0 || !errors.Is(err, context.Canceled) {
			t.Fatalf("done ctx: %v", err)
		}
		// Deadline exceeded while queued.
		dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer dcancel()
		_, err = b.Acquire(dctx)
		if re := rejected(t, err, ReasonContext); re.Waited != 3*time.Second || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("deadline: %v", err)
		}
		p.Release()
		checkEmpty(t, b)
	})
}

func TestFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 8
		b := newBulkhead(t, Config{MaxConcurrent: 1, MaxQueue: n})
		p := acquire(t, b)
		var mu sync.Mutex
		var order []int
		permits := make(chan Permit)
		for i := range n {
			go func() {
				p, err := b.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				permits <- p
			}()
			synctest.Wait() // waiter i is queued before waiter i+1 arrives
		}
		if got := b.QueueLen(); got != n {
			t.Fatalf("QueueLen() = %d, want %d", got, n)
		}
		for range n {
			p.Release()
			p = <-permits
			if got := b.InFlight(); got != 1 {
				t.Fatalf("InFlight() = %d, want 1", got)
			}
		}
		p.Release()
		for i, got := range order {
			if got != i {
				t.Fatalf("admission order = %v, want 0..%d", order, n-1)
			}
		}
		checkEmpty(t, b)
	})
}

func TestNoBarging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, Config{MaxConcurrent: 1, MaxQueue: 1})
		p := acquire(t, b)
		got := make(chan Permit)
		go func() {
			p, err := b.Acquire(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- p
		}()
		synctest.Wait()
		p.Release()
		// The slot went to the waiter, even before it woke up.
		if _, ok := b.TryAcquire(); ok {
			t.Fatal("TryAcquire() barged ahead of a queued waiter")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := b.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire() = %v, want it to queue behind the waiter until its deadline", err)
		}
		(<-got).Release()
		checkEmpty(t, b)
	})
}

// TestTimeoutRacesRelease releases the slot at the very instant a queued
// caller's MaxWait or context expires, many times so that the goroutines
// run in either order; no slot may leak.
func TestTimeoutRacesRelease(t *testing.T) {
	for _, viaCtx := range []bool{false, true} {
		for range 50 {
			synctest.Test(t, func(t *testing.T) {
				const wait = time.Second
				cfg := Config{MaxConcurrent: 1, MaxQueue: 2}
				ctx := context.Background()
				if viaCtx {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, wait)
					defer cancel()
				} else {
					cfg.MaxWait = wait
				}
				b := newBulkhead(t, cfg)
				p := acquire(t, b)
				released := make(chan struct{})
				go func() {
					time.Sleep(wait)
					p.Release()
					close(released)
				}()
				p2, err := b.Acquire(ctx)
				if err == nil {
					p2.Release()
				} else if !errors.Is(err, ErrFull) {
					t.Fatalf("Acquire() = %v", err)
				}
				<-released
				checkEmpty(t, b)
				// The bulkhead still works.
				acquire(t, b).Release()
				checkEmpty(t, b)
			})
		}
	}
}

func TestExecute(t *testing.T) {
	b := newBulkhead(t, Config{MaxConcurrent: 1})
	errBoom := errors.New("boom")
	if err := b.Execute(context.Background(), func(context.Context) error { return errBoom }); err != errBoom {
		t.Fatalf("Execute() = %v, want %v", err, errBoom)
	}
	func() {
		defer func() { _ = recover() }()
		_ = b.Execute(context.Background(), func(context.Context) error { panic("boom") })
	}()
	checkEmpty(t, b)
	err := b.Execute(context.Background(), func(ctx context.Context) error {
		return b.Execute(ctx, func(context.Context) error { return nil })
	})
	rejected(t, err, ReasonQueueFull)
	checkEmpty(t, b)
}

func TestConcurrentExecute(t *testing.T) {
	const limit = 4
	for _, cfg := range []Config{
		{MaxConcurrent: limit, MaxQueue: 64},
		{MaxConcurrent: limit, MaxQueue: 64, MaxWait: time.Hour},
		{MaxConcurrent: limit, MaxQueue: 8, MaxWait: 50 * time.Microsecond},
	} {
		b := newBulkhead(t, cfg)
		var cur, peak, admitted, rejectedCalls atomic.Int64
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Go(func() {
				ctx := context.Background()
				if g%8 == 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 100*time.Microsecond)
					defer cancel()
				}
				for range 300 {
					err := b.Execute(ctx, func(context.Context) error {
						n := cur.Add(1)
						for {
							m := peak.Load()
							if n <= m || peak.CompareAndSwap(m, n) {
								break
							}
						}
						if g%3 == 0 {
							time.Sleep(time.Microsecond)
						}
						cur.Add(-1)
						return nil
					})
					if err == nil {
						admitted.Add(1)
					} else if errors.Is(err, ErrFull) {
						rejectedCalls.Add(1)
					} else {
						t.Errorf("Execute() = %v", err)
					}
				}
			})
		}
		wg.Wait()
		if got := peak.Load(); got > limit {
			t.Errorf("%+v: peak in flight = %d, want <= %d", cfg, got, limit)
		}
		if admitted.Load() == 0 {
			t.Errorf("%+v: nothing admitted", cfg)
		}
		if cfg.MaxWait == 0 && cfg.MaxQueue == 64 && rejectedCalls.Load() > 8*300 {
			t.Errorf("%+v: %d rejected, only ctx-bound callers may be", cfg, rejectedCalls.Load())
		}
		checkEmpty(t, b)
	}
}
