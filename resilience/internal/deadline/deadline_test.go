package deadline_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/resilience/internal/deadline"
)

// TestDeriveStartsNoGoroutine checks that contexts derived from a Context,
// directly or under WithValue, start no goroutine, as with
// context.WithTimeout, where the same derivations from a parent the context
// package cannot see through start one each; and that they end with it.
// stableGoroutines returns the number of goroutines once it has stopped
// changing, so that goroutines of earlier tests still exiting (AfterFunc
// callbacks, propagation goroutines of cancelled contexts) do not count.
func stableGoroutines() int {
	n := runtime.NumGoroutine()
	for same, deadline := 0, time.Now().Add(2*time.Second); same < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

func TestDeriveStartsNoGoroutine(t *testing.T) {
	derive := func(ctx context.Context) (ctxs []context.Context, ran *atomic.Int32, release func()) {
		ran = new(atomic.Int32)
		var cancels []func()
		for range 10 {
			c1, cancel1 := context.WithCancel(ctx)
			c2, cancel2 := context.WithTimeout(ctx, time.Hour)
			c3, cancel3 := context.WithTimeout(context.WithValue(ctx, key("k"), 1), time.Millisecond*500)
			stop := context.AfterFunc(ctx, func() { ran.Add(1) })
			ctxs = append(ctxs, c1, c2, c3)
			cancels = append(cancels, cancel1, cancel2, cancel3, func() { stop() })
		}
		return ctxs, ran, func() {
			for _, c := range cancels {
				c()
			}
		}
	}
	for _, tc := range []struct {
		name string
		make func(parent context.Context) (context.Context, func())
		want int // goroutines started
	}{
		{"deadline", func(parent context.Context) (context.Context, func()) {
			c := deadline.New(parent, time.Minute)
			return c, c.Cancel
		}, 0},
		{"stdlib", func(parent context.Context) (context.Context, func()) {
			return context.WithTimeout(parent, time.Minute)
		}, 0},
		{"opaque", func(parent context.Context) (context.Context, func()) {
			ctx, cancel := context.WithTimeout(parent, time.Minute)
			return opaque{ctx}, cancel
		}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, cancelParent := context.WithCancel(context.Background())
			defer cancelParent()
			ctx, cancel := tc.make(parent)
			defer cancel()

			before := stableGoroutines()
			ctxs, ran, release := derive(ctx)
			defer release()
			if got := runtime.NumGoroutine() - before; got != tc.want {
				t.Fatalf("deriving 40 contexts started %d goroutines, want %d", got, tc.want)
			}
			cancel()
			for i, c := range ctxs {
				select {
				case <-c.Done():
				case <-time.After(10 * time.Second):
					t.Fatalf("child %d: Done not closed after cancel", i)
				}
				if !errors.Is(c.Err(), context.Canceled) {
					t.Errorf("child %d: Err() = %v, want %v", i, c.Err(), context.Canceled)
				}
			}
			for deadline := time.Now().Add(10 * time.Second); ran.Load() != 10 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if got := ran.Load(); got != 10 {
				t.Errorf("%d AfterFuncs ran, want 10", got)
			}
		})
	}
}

// TestChildrenUnregister checks that stopping children (their cancel or an
// AfterFunc's stop) unregisters them, so an AfterFunc does not run.
func TestChildrenUnregister(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := deadline.New(context.Background(), time.Second)
		defer c.Cancel()
		var ran atomic.Bool
		stop := context.AfterFunc(c, func() { ran.Store(true) })
		if !stop() {
			t.Errorf("stop() = false, want true")
		}
		if stop() {
			t.Errorf("second stop() = true, want false")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if ran.Load() {
			t.Errorf("stopped AfterFunc ran")
		}
	})
}

// TestLazyDivergence pins down the one documented difference in Err: when
// the deadline passes and the parent ends afterwards, with no observation
// and no Done in between, Err reports the parent's error.
func TestLazyDivergence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancelParent := context.WithCancelCause(context.Background())
		c := deadline.New(parent, time.Second)
		defer c.Cancel()
		time.Sleep(2 * time.Second)
		cancelParent(errParent)
		if got := c.Err(); got != context.Canceled {
			t.Errorf("Err() = %v, want %v (the parent's)", got, context.Canceled)
		}
		if got := context.Cause(c); got != errParent {
			t.Errorf("Cause() = %v, want %v", got, errParent)
		}
	})
}

// TestErrNotBeforeDone checks, with real time and the race detector, that
// many goroutines observing a Context while Cancel, the deadline and the
// parent race see one stable error, and never a closed Done with a nil Err.
func TestErrNotBeforeDone(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	for r := range rounds {
		parent, cancelParent := context.WithCancel(context.Background())
		c := deadline.New(parent, time.Duration(rand.IntN(200))*time.Microsecond)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for g := range 8 {
			wg.Go(func() {
				var first error
				for {
					var err error
					switch g % 4 {
					case 0:
						err = c.Err()
					case 1:
						select {
						case <-c.Done():
							err = c.Err()
							if err == nil {
								t.Errorf("round %d: Err() = nil after Done closed", r)
								return
							}
						default:
							err = c.Err()
						}
					case 2:
						child, cancel := context.WithCancel(c)
						<-child.Done()
						err = c.Err()
						if err == nil || child.Err() == nil {
							t.Errorf("round %d: child done, Err() = %v, child Err() = %v", r, err, child.Err())
						}
						cancel()
					case 3:
						err = context.Cause(c)
					}
					if first != nil && err != first {
						t.Errorf("round %d: Err() = %v after %v", r, err, first)
						return
					}
					if err != nil {
						if first == nil {
							first = err
						}
						errs[g] = err
						return
					}
					runtime.Gosched()
				}
			})
		}
		go func() {
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			if rand.IntN(2) == 0 {
				c.Cancel()
			} else {
				cancelParent()
			}
		}()
		wg.Wait()
		want := c.Err()
		for g, err := range errs {
			if err != want {
				t.Errorf("round %d: goroutine %d saw %v, the context %v", r, g, err, want)
			}
		}
		c.Cancel()
		cancelParent()
	}
}

func TestString(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := deadline.New(context.Background(), 1500*time.Millisecond)
		defer c.Cancel()
		want := "context.Background.WithDeadline(2000-01-01 00:00:01.5 +0000 UTC [1.5s])"
		if got := c.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		child, cancel := context.WithCancel(c)
		defer cancel()
		if got := child.(interface{ String() string }).String(); !strings.HasPrefix(got, want) {
			t.Errorf("child's String() = %q, want prefix %q", got, want)
		}
	})
}

func TestNewNilParentPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("New(nil, 1s) did not panic")
		}
	}()
	//lint:ignore SA1012 testing the panic
	deadline.New(nil, time.Second)
}

// TestAllocs checks New, Err and Cancel allocate the Context and nothing
// else, for a callee that does not call Done.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sink error
	got := testing.AllocsPerRun(1000, func() {
		c := deadline.New(parent, time.Second)
		sink = c.Err()
		c.Cancel()
		sink = c.Err()
	})
	_ = sink
	if got != 1 {
		t.Errorf("New, Err, Cancel: %v allocs, want 1", got)
	}
}
